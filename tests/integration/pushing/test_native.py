"""The native pusher against the real engine and the real registry: no crane, no container."""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import os
import secrets
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from ephemeral_registry import (
    ImageNotFoundError,
    InvalidArgumentError,
    LogLine,
    PushError,
    PushTimeoutError,
    Registry,
)
from ephemeral_registry._pushers import distribution

from ..support import testbed
from ..support.engine_proxy import EngineProxy
from ..support.helpers import get, registry_under_test, session_resources

pytestmark = pytest.mark.anyio

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"


async def manifest(pull_endpoint: str, repository: str, reference: str) -> dict[str, object]:
    response = await get(
        pull_endpoint, f"/v2/{repository}/manifests/{reference}", Accept=OCI_MANIFEST
    )
    assert response.status_code == 200, response.text
    document: dict[str, object] = response.json()
    return document


def layer_types(document: dict[str, object]) -> set[str]:
    layers = document["layers"]
    assert isinstance(layers, list)
    return {str(layer["mediaType"]) for layer in layers}


@pytest.mark.parametrize(
    ("compression", "media_type"), [("gzip", f"{LAYER}+gzip"), ("none", LAYER)]
)
async def test_push_image_natively_is_the_same_image_with_no_container_and_no_file(
    compression: str, media_type: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Pulled back by the engine: same config. Nothing but the registry's own two resources,
    and nothing written to a temporary directory."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    lines: list[LogLine] = []
    async with registry_under_test(pusher="native", layer_compression=compression) as registry:
        endpoints = await registry.ready()

        async def during_push(line: LogLine) -> None:
            lines.append(line)
            assert len(session_resources(registry)) == 2  # the registry and its network

        result = await registry.push_image(testbed.SAMPLE, "native/sample:v1", on_log=during_push)
        assert await testbed.pulled_config_digest(result.ref) == testbed.config_digest(
            testbed.SAMPLE
        )
        pushed = await manifest(endpoints.pull_endpoint, "native/sample", "v1")
        assert layer_types(pushed) == {media_type}
    assert list(tmp_path.iterdir()) == []
    assert any(line.startswith("pushed blob: sha256:") for line in lines)
    assert lines[-1] == f"{endpoints.push_endpoint}/native/sample@{result.digest}"


async def test_a_tarball_and_an_oci_layout_are_pushed_natively(tmp_path: Path) -> None:
    """push() of a docker save tarball (gzipped on the way) and of a layout (as it is)."""
    tarball = tmp_path / "sample.tar"
    await testbed.adocker("save", "-o", str(tarball), testbed.SAMPLE)
    layout = tmp_path / "layout"
    await testbed.oci_layout(testbed.SAMPLE, layout)
    layout_manifest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    layout_config = json.loads((layout / "blobs" / layout_manifest.replace(":", "/")).read_text())[
        "config"
    ]["digest"]
    async with registry_under_test() as registry:
        from_tarball = await registry.push(tarball, "native/tarball", pusher="native")
        from_layout = await registry.push(layout, "native/layout", pusher="native")
        assert from_layout.digest == layout_manifest  # the layout's own manifest, as it is
        assert await testbed.pulled_config_digest(from_layout.ref) == layout_config
        source = testbed.config_digest(testbed.SAMPLE)
        assert await testbed.pulled_config_digest(from_tarball.ref) == source


DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"


def docker_manifest_layout(path: Path, layers: list[bytes]) -> tuple[str, str]:
    """Write an OCI layout whose index.json names a Docker image manifest (as Docker 29's
    save, unpacked, is) of uncompressed ``layers``; return its manifest's and config's digests."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes, media_type: str) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    diff_ids = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "config": {},
         "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    ).encode()  # fmt: skip
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": blob(config, "application/vnd.docker.container.image.v1+json"),
            "layers": [
                blob(layer, "application/vnd.docker.image.rootfs.diff.tar") for layer in layers
            ],
        }
    ).encode()
    named = blob(manifest, DOCKER_MANIFEST)
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [named]}))
    (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return str(named["digest"]), "sha256:" + hashlib.sha256(config).hexdigest()


async def test_a_layout_naming_a_docker_manifest_is_pushed_natively(tmp_path: Path) -> None:
    """As it is, its blobs two at a time."""
    layers = [layer_tar({f"file-{n}": os.urandom(2 << 20)}) for n in range(3)]
    manifest, config = docker_manifest_layout(tmp_path / "layout", layers)
    async with registry_under_test(pusher="native") as registry:
        result = await registry.push(tmp_path / "layout", "docker/manifest")
        assert result.digest == manifest
        assert await testbed.pulled_config_digest(result.ref) == config
    assert session_resources(registry) == set()


async def test_shared_layers_are_uploaded_once_then_mounted_or_found() -> None:
    """The registry image's layers: uploaded once by two pushes at once (the second waits and
    mounts), mounted into a third repository after, and found in the first one again."""
    lines: dict[str, list[str]] = {}

    async def push(registry: Registry, repository: str) -> None:
        lines[repository] = []
        await registry.push_image(
            testbed.REGISTRY3, f"{repository}:1", on_log=lines[repository].append
        )

    def blobs(repository: str, how: str) -> list[str]:
        return [line.split()[2] for line in lines[repository] if line.startswith(how)]

    async with registry_under_test(pusher="native") as registry:
        async with anyio.create_task_group() as tg:
            tg.start_soon(push, registry, "shared/one")
            tg.start_soon(push, registry, "shared/two")
        at_once = {*blobs("shared/one", "mounted"), *blobs("shared/two", "mounted")}
        assert at_once, "the second of two pushes at once mounted nothing"
        uploaded = blobs("shared/one", "pushed") + blobs("shared/two", "pushed")
        assert all(uploaded.count(digest) == 1 for digest in at_once)

        await push(registry, "shared/three")
        assert set(blobs("shared/three", "mounted")) >= at_once
        await push(registry, "shared/one")
        assert set(blobs("shared/one", "existing")) >= at_once

        pull_endpoint = (await registry.ready()).pull_endpoint
        for repository in ("shared/two", "shared/three"):
            pulled = await testbed.pulled_config_digest(f"{pull_endpoint}/{repository}:1")
            assert pulled == testbed.config_digest(testbed.REGISTRY3)


async def test_gzip_layers_pass_crane_validate_in_full() -> None:
    """crane validate --remote reads every layer as gzip: native gzip layers pass."""
    async with registry_under_test(pusher="native") as registry:
        endpoints = await registry.ready()
        await registry.push_image(testbed.REGISTRY3, "validated/registry:3")
        done = await anyio.run_process(
            [
                *("docker", "run", "--rm", "--network", endpoints.network, testbed.CRANE),
                *("validate", "--insecure", "--remote"),
                f"{endpoints.push_endpoint}/validated/registry:3",
            ],
            check=False,
            env={**os.environ, "DOCKER_HOST": testbed.ENGINE},
        )
        assert done.returncode == 0, (done.stdout + done.stderr).decode()
        assert b"PASS" in done.stdout + done.stderr


async def test_a_refused_upload_is_a_push_error_with_the_registry_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A digest that does not match what was uploaded: the registry's error body comes back."""
    monkeypatch.setattr(
        distribution, "with_digest", lambda location, digest: _real(location, "sha256:" + "0" * 64)
    )
    async with registry_under_test(pusher="native") as registry:
        with pytest.raises(PushError) as caught:
            await registry.push_image(testbed.SAMPLE, "refused/sample")
        assert "DIGEST_INVALID" in str(caught.value)
        assert caught.value.exit_code is None
        monkeypatch.undo()
        again = await registry.push_image(testbed.SAMPLE, "refused/sample")
        assert again.digest.startswith("sha256:")


_real = distribution.with_digest


async def test_a_native_block_never_asks_for_the_crane_image(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With pusher="native", a crane image the engine lacks (pull="never") fails nothing and
    is never asked about: the registry comes up and pushes natively, and leaves nothing. A
    push that chooses crane is the first to ask, and fails with ImageNotFoundError."""
    absent = "ephemeral-registry-testbed/no-crane-for-native"
    since = time.time()
    async with EngineProxy.running(tmp_path / "engine.sock") as proxy:
        monkeypatch.setenv("DOCKER_HOST", proxy.url)

        def asked() -> list[str]:
            return [request for request in proxy.requests if absent in request]

        async with registry_under_test(pusher="native", crane_image=absent) as registry:
            result = await registry.push_image(testbed.SAMPLE, "native/sample")
            assert result.digest.startswith("sha256:")
            assert await testbed.pulled_config_digest(result.ref) == testbed.config_digest(
                testbed.SAMPLE
            )
            assert asked() == []
            with pytest.raises(ImageNotFoundError, match=absent) as caught:
                await registry.push_image(testbed.SAMPLE, "crane/sample", pusher="crane")
            assert caught.value.pull == "never"
            assert len(asked()) == 1, asked()
        assert session_resources(registry) == set()
    assert testbed.containers_created(registry.session_id, since) == [registry.name]


async def test_an_authenticated_registry_takes_native_pushes() -> None:
    async with registry_under_test(pusher="native", auth=True) as registry:
        result = await registry.push_image(testbed.SAMPLE, "private/sample")
        endpoints = await registry.ready()
        assert (await get(endpoints.pull_endpoint, "/v2/")).status_code == 401
        assert result.digest.startswith("sha256:")


@pytest.mark.parametrize(
    ("options", "call", "argument"),
    [
        ({"pusher": "skopeo"}, {}, "pusher"),
        ({"layer_compression": "zstd"}, {}, "layer_compression"),
        ({}, {"pusher": "fast"}, "pusher"),
    ],
)
async def test_bad_pusher_options_are_refused_before_anything_is_created(
    options: dict[str, str], call: dict[str, object], argument: str
) -> None:
    before = testbed.labelled_by_this_run()
    with pytest.raises(InvalidArgumentError) as caught:
        async with registry_under_test(**options) as registry:
            await registry.push_image(testbed.SAMPLE, "never/pushed", **call)  # type: ignore[arg-type]
    assert caught.value.argument == argument
    if not call:
        assert testbed.labelled_by_this_run() == before


LONG_FILE = (
    "data/a-directory-name-that-is-long-enough/to-push-the-whole-path-over-one-hundred-bytes/"
    "in-a-tar-header/a-file-name-that-by-itself-is-longer-than-one-hundred-bytes-which-ustar"
    "-cannot-hold-in-its-name-field.txt"
)


async def pull_like_a_plain_client(
    pull_endpoint: str, repository: str, tag: str, *, gunzip: bool
) -> list[tarfile.TarInfo]:
    """Fetch manifest, config and layers; check every digest and diff_id; return the entries.

    ``gunzip``: gunzip every layer whatever its media type, as many hand-written pullers do.
    """
    async with httpx.AsyncClient(base_url=f"http://{pull_endpoint}", trust_env=False) as client:
        found = await client.get(
            f"/v2/{repository}/manifests/{tag}", headers={"Accept": OCI_MANIFEST}
        )
        document = found.json()

        async def blob(digest: str) -> bytes:
            data = (await client.get(f"/v2/{repository}/blobs/{digest}")).content
            assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
            return data

        config = json.loads(await blob(document["config"]["digest"]))
        entries = []
        for layer, diff_id in zip(document["layers"], config["rootfs"]["diff_ids"], strict=True):
            data = await blob(layer["digest"])
            plain = gzip.decompress(data) if gunzip else data
            assert "sha256:" + hashlib.sha256(plain).hexdigest() == diff_id
            with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
                entries.extend(tar.getmembers())
    return entries


@pytest.mark.parametrize("registry_image", [testbed.REGISTRY2, testbed.REGISTRY3])
@pytest.mark.parametrize("compression", ["gzip", "none"])
async def test_an_image_with_links_whiteouts_long_names_and_an_empty_layer(
    registry_image: str, compression: str, tmp_path: Path
) -> None:
    """Read back by the engine (same image, same files), by skopeo, by crane validate (gzip),
    and by a plain puller that checks every digest (and always gunzips, for gzip)."""
    ref = f"interop/image:{compression}"
    async with registry_under_test(
        registry_image=registry_image, pusher="native", layer_compression=compression
    ) as registry:
        endpoints = await registry.ready()
        result = await registry.push_image(testbed.INTEROP, ref)

        entries = await pull_like_a_plain_client(
            endpoints.pull_endpoint, "interop/image", compression, gunzip=compression == "gzip"
        )
        names = {entry.name.removeprefix("./") for entry in entries}
        assert {LONG_FILE, "data/.wh.doomed-file", "data/.wh.doomed-dir"} <= names
        assert any(entry.islnk() and entry.name.endswith("data/hardlink") for entry in entries)
        assert any(entry.issym() and entry.name.endswith("data/symlink") for entry in entries)
        pushed = await manifest(endpoints.pull_endpoint, "interop/image", compression)
        layers = pushed["layers"]
        assert isinstance(layers, list)
        assert len(layers) == 8  # the builder leaves the unchanged step (RUN true) out

        copied = await anyio.run_process(
            [
                *("skopeo", "copy", "-q", "--src-tls-verify=false"),
                f"docker://{result.ref}",
                f"oci:{tmp_path / 'layout'}:copied",
            ],
            check=False,
        )
        assert copied.returncode == 0, copied.stderr.decode()

        if compression == "gzip":
            validated = await anyio.run_process(
                [
                    *("docker", "run", "--rm", "--network", endpoints.network, testbed.CRANE),
                    *("validate", "--insecure", "--remote", f"{endpoints.push_endpoint}/{ref}"),
                ],
                check=False,
                env={**os.environ, "DOCKER_HOST": testbed.ENGINE},
            )
            assert validated.returncode == 0, (validated.stdout + validated.stderr).decode()

        assert await testbed.pulled_config_digest(result.ref) == testbed.config_digest(
            testbed.INTEROP
        )
        await testbed.adocker("pull", "-q", result.ref)
        try:
            shown = await testbed.adocker(
                "run", "--rm", "--network", "none", result.ref,
                "/bin/busybox", "sh", "-c", f"cat /data/file /{LONG_FILE}; ls /data",
            )  # fmt: skip
        finally:
            await testbed.adocker("rmi", result.ref)
        assert shown.splitlines()[:2] == ["changed", "deep"]
        assert "doomed-file" not in shown
        assert "doomed-dir" not in shown


def docker_save_tarball(path: Path, layers: list[bytes]) -> str:
    """Write a ``docker save`` tarball of an image made of ``layers`` (uncompressed tars);
    return its config's digest."""
    diff_ids = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    names = [f"{diff_id.split(':')[1]}/layer.tar" for diff_id in diff_ids]
    manifest = json.dumps([{"Config": config_name, "RepoTags": None, "Layers": names}]).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in [(config_name, config), *zip(names, layers, strict=True)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    return "sha256:" + hashlib.sha256(config).hexdigest()


def layer_tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


async def test_a_native_push_that_runs_too_long_is_a_push_error(tmp_path: Path) -> None:
    """push_timeout bounds a native push too: into a stopped registry (SIGSTOP: a rootless
    engine on cgroup v1 cannot pause), it ends in PushTimeoutError after that time; the
    registry, resumed, takes pushes again."""
    layers = [layer_tar({"file": os.urandom(3 << 20)})]
    docker_save_tarball(tmp_path / "one.tar", layers)
    async with registry_under_test(pusher="native", push_timeout=1.0) as registry:
        await registry.ready()
        testbed.docker("kill", "--signal", "STOP", registry.name)
        try:
            started = anyio.current_time()
            with pytest.raises(PushTimeoutError) as caught:
                await registry.push(tmp_path / "one.tar", "paused/registry")
            assert anyio.current_time() - started < 5
        finally:
            testbed.docker("kill", "--signal", "CONT", registry.name)
        assert "did not finish within 1 s" in str(caught.value)
        await registry.push(tmp_path / "one.tar", "resumed/registry")
    assert session_resources(registry) == set()


async def test_the_next_layer_is_uploaded_while_one_is_still_being_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading the save runs ahead of the sending: the second layer's upload starts before
    the first one has sent a byte (both layers fit in RUN_AHEAD), and the image lands."""
    layers = [layer_tar({f"file-{n}": os.urandom(3 << 20)}) for n in range(2)]
    config = docker_save_tarball(tmp_path / "two.tar", layers)
    upload = distribution.Api.upload
    started: list[anyio.Event] = [anyio.Event(), anyio.Event()]

    async def first_waits_for_the_second(api: distribution.Api, *args: Any) -> None:
        ordinal = sum(event.is_set() for event in started)
        started[ordinal].set()
        if ordinal == 0:
            with anyio.fail_after(10):  # sequential uploads would wait here for ever
                await started[1].wait()
        await upload(api, *args)

    monkeypatch.setattr(distribution.Api, "upload", first_waits_for_the_second)
    async with registry_under_test(pusher="native", layer_compression="none") as registry:
        result = await registry.push(tmp_path / "two.tar", "run/ahead")
        assert all(event.is_set() for event in started)
        assert await testbed.pulled_config_digest(result.ref) == config
    assert session_resources(registry) == set()


@pytest.mark.parametrize("compression", ["gzip", "none"])
async def test_an_empty_layer_is_pushed_and_pulled_back(compression: str, tmp_path: Path) -> None:
    """A layer with no entries at all, between two others, in a hand-made docker save tarball."""
    layers = [layer_tar({"first": b"1"}), layer_tar({}), layer_tar({"last": b"2"})]
    config = docker_save_tarball(tmp_path / "empty.tar", layers)
    async with registry_under_test(pusher="native", layer_compression=compression) as registry:
        result = await registry.push(tmp_path / "empty.tar", "empty/layer")
        endpoints = await registry.ready()
        entries = await pull_like_a_plain_client(
            endpoints.pull_endpoint, "empty/layer", "latest", gunzip=compression == "gzip"
        )
        assert [entry.name for entry in entries] == ["first", "last"]
        assert await testbed.pulled_config_digest(result.ref) == config


async def test_a_full_disk_is_a_push_error_with_the_registry_answer(tmp_path: Path) -> None:
    """An 80 MB layer into a registry whose storage is a 64 MiB tmpfs: the registry's error
    comes back in a PushError, and nothing is left. (The registry keeps the partial upload:
    registry 2 refuses to cancel an upload that failed, so its disk stays full.)"""
    big = layer_tar({"random": os.urandom(80 << 20)})
    docker_save_tarball(tmp_path / "big.tar", [big])
    del big
    async with registry_under_test(
        registry_image=testbed.REGISTRY_SMALL_DISK, pusher="native", layer_compression="none"
    ) as registry:
        with pytest.raises(PushError) as caught:
            await registry.push(tmp_path / "big.tar", "too/big")
        message = str(caught.value)
        assert "no space left on device" in message, message
        assert "PATCH /v2/too/big/blobs/uploads/" in message, message  # broke off, or a 500
        assert "registry: " in message  # the registry's own error line
        assert caught.value.exit_code is None
    assert session_resources(registry) == set()


async def test_progress_is_reported_by_both_pushers(tmp_path: Path) -> None:
    """Native: every MiB and at the end (a file's total is its size; an export's is unknown).
    crane: the export's bytes from the first MiB, before crane starts (total unknown), then
    as each blob of the exported layout lands, up to a total that counts both."""
    tarball = tmp_path / "interop.tar"
    await testbed.adocker("save", "-o", str(tarball), testbed.INTEROP)
    calls: dict[str, list[tuple[int, int | None]]] = {}
    events: list[str] = []  # crane's push: progress and output lines, in order

    def recorder(name: str) -> Callable[[int, int | None], None]:
        calls[name] = []

        def record(done: int, total: int | None) -> None:
            calls[name].append((done, total))
            events.append("progress")

        return record

    async with registry_under_test() as registry:
        await registry.push(tarball, "progress/file", pusher="native", on_progress=recorder("file"))
        await registry.push_image(
            testbed.INTEROP, "progress/export", pusher="native", on_progress=recorder("export")
        )
        events.clear()
        await registry.push_image(
            testbed.INTEROP,
            "progress/crane",
            on_progress=recorder("crane"),
            on_log=lambda line: events.append("line"),
        )
    size = tarball.stat().st_size
    assert calls["file"][-1] == (size, size)
    assert len(calls["file"]) >= size // (1 << 20)
    assert {total for _, total in calls["export"]} == {None}
    assert calls["export"][-1][0] > 4 << 20  # the export's bytes, all of them
    exporting = [done for done, total in calls["crane"] if total is None]
    assert len(exporting) >= 2  # about every MiB of the export (a chunk may be more)
    assert exporting[-1] == calls["export"][-1][0]  # all of it, as the native pusher read it
    assert events.index("line") >= len(exporting)  # all of them before crane's first line
    crane_totals = {total for _, total in calls["crane"]} - {None}
    assert len(crane_totals) == 1
    (total,) = crane_totals
    assert total is not None
    assert total > exporting[-1]  # the export's bytes, and then the blobs'
    assert calls["crane"][-1] == (total, total)
    assert len(calls["crane"]) - len(exporting) > 2  # blob by blob, not only at the end
    for name, made in calls.items():
        done = [d for d, _ in made]
        assert done == sorted(done), name


@pytest.fixture
async def derived_image(tmp_path: Path) -> AsyncIterator[str]:
    """An image built on the interop image: its base layers are the interop image's."""
    tag = f"ert-derived-{secrets.token_hex(4)}"
    (tmp_path / "Dockerfile").write_text(
        f'FROM {testbed.INTEROP}\nRUN ["/bin/busybox", "sh", "-c", "echo derived >/derived"]\n'
    )
    built = await anyio.run_process(
        ["docker", "build", "-q", "--network", "none", "-t", tag, str(tmp_path)],
        env={**os.environ, "DOCKER_HOST": testbed.ENGINE, "DOCKER_BUILDKIT": "0"},
        check=False,
    )
    assert built.returncode == 0, built.stderr.decode()
    try:
        yield tag
    finally:
        await testbed.adocker("rmi", tag)


async def test_two_images_on_one_base_pushed_at_once_upload_its_layers_once(
    derived_image: str,
) -> None:
    """The base's large layers go up once; the other push mounts them (or waits and finds
    them), and both images pull back whole."""
    lines: dict[str, list[str]] = {"base": [], "derived": []}
    async with registry_under_test(pusher="native") as registry:
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                functools.partial(
                    registry.push_image, testbed.INTEROP, "base/image", on_log=lines["base"].append
                )
            )
            tg.start_soon(
                functools.partial(
                    registry.push_image,
                    derived_image,
                    "derived/image",
                    on_log=lines["derived"].append,
                )
            )
        pull_endpoint = (await registry.ready()).pull_endpoint
        for repository, image in (
            ("base/image", testbed.INTEROP),
            ("derived/image", derived_image),
        ):
            pulled = await testbed.pulled_config_digest(f"{pull_endpoint}/{repository}:latest")
            assert pulled == testbed.config_digest(image)
    every = lines["base"] + lines["derived"]
    uploaded = [line.split()[2] for line in every if line.startswith("pushed blob")]
    assert len(uploaded) == len(set(uploaded)), every  # no blob went up twice
    mounted = {line.split()[2] for line in every if line.startswith("mounted blob")}
    assert len(mounted) >= 8, every  # the base's layers, into the repository pushed second


async def test_native_pushes_go_straight_to_the_container_where_this_host_reaches_it() -> None:
    """A local Docker engine as root: the container's own address, which answers from this
    host (docker-proxy, on the published port, copies every byte again). Podman, which
    forwards ports in the kernel, a rootless engine and an engine whose networks are not
    this host's (shaped like Docker Desktop's): the published port."""
    lines: list[LogLine] = []
    async with registry_under_test(pusher="native") as registry:
        endpoints = await registry.ready()
        result = await registry.push_image(testbed.SAMPLE, "direct/sample:v1", on_log=lines.append)
        address = testbed.inspect("container", registry.name)["NetworkSettings"]["Networks"][
            endpoints.network
        ]["IPAddress"]
        direct = not (testbed.is_podman() or testbed.is_rootless() or testbed.is_desktop_shaped())
        target = f"{address}:5000" if direct else endpoints.pull_endpoint
        assert f"sending to http://{target}" in lines
        assert await testbed.pulled_config_digest(result.ref) == testbed.config_digest(
            testbed.SAMPLE
        )
    assert session_resources(registry) == set()
