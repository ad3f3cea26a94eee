"""Pushes against the real engine, the real registry and the real crane."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import shutil
import tarfile
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from ephemeral_registry import (
    Endpoints,
    ImageNotFoundError,
    InvalidArgumentError,
    InvalidReferenceError,
    InvalidSourceError,
    LayerCompression,
    LogLine,
    PushError,
    PushResult,
    PushTimeoutError,
    RegistryClosedError,
    _host,
)
from ephemeral_registry._engine import DockerEngine

from ..support import testbed
from ..support.engine_proxy import EngineProxy
from ..support.helpers import get, registry_under_test, saved, session_resources

pytestmark = pytest.mark.anyio

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


async def manifest_digest(endpoints: Endpoints, repository: str, reference: str) -> str:
    response = await get(
        endpoints.pull_endpoint, f"/v2/{repository}/manifests/{reference}", Accept=MANIFEST_TYPES
    )
    assert response.status_code == 200, response.text
    return response.headers["Docker-Content-Digest"]


async def test_a_pushed_tarball_is_pulled_back_as_the_same_image(tmp_path: Path) -> None:
    """ref pulls the source image (same id); digest_ref names the same manifest."""
    tarball = await saved(testbed.SAMPLE, tmp_path)
    assert tarball.stat().st_mode & 0o777 == 0o600
    async with registry_under_test() as registry:
        result = await registry.push(tarball, "apps/sample:v1")
        endpoints = await registry.ready()
        assert result == PushResult(
            ref=f"{endpoints.pull_endpoint}/apps/sample:v1",
            digest=result.digest,
            digest_ref=f"{endpoints.pull_endpoint}/apps/sample@{result.digest}",
        )
        assert result.digest.startswith("sha256:")
        assert len(result.digest) == len("sha256:") + 64
        source = testbed.config_digest(testbed.SAMPLE)
        assert await testbed.pulled_config_digest(result.ref) == source
        assert await testbed.pulled_config_digest(result.digest_ref) == source
        assert await manifest_digest(endpoints, "apps/sample", "v1") == result.digest
        assert await manifest_digest(endpoints, "apps/sample", result.digest) == result.digest


async def test_the_tag_defaults_to_latest(tmp_path: Path) -> None:
    """``repo`` alone is pushed as ``repo:latest``."""
    tarball = await saved(testbed.SAMPLE, tmp_path)
    async with registry_under_test() as registry:
        result = await registry.push(tarball, "plain")
        assert result.ref.endswith("/plain:latest")


async def test_log_lines_stream_while_crane_runs(tmp_path: Path) -> None:
    """A line reaches on_log while the crane container still runs (one that never ends)."""
    tarball = await saved(testbed.SAMPLE, tmp_path)
    first_line = anyio.Event()
    running: list[str] = []

    async def on_log(line: LogLine) -> None:
        first_line.set()

    async with (
        registry_under_test(crane_image=testbed.CRANE_HANGS) as registry,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(functools.partial(registry.push, tarball, "hangs/app:1", on_log=on_log))
        with anyio.fail_after(30):
            await first_line.wait()
        label = f"label={testbed.LABEL}={registry.session_id}"
        running = testbed.docker("ps", "--filter", label, "--format", "{{.Names}}").split()
        tg.cancel_scope.cancel()
    assert [name for name in running if "-push-" in name], running


async def test_log_lines_keep_their_streams(tmp_path: Path) -> None:
    """Each line is a LogLine of one stream: progress on stderr, the digest alone on stdout."""
    tarball = await saved(testbed.REGISTRY3, tmp_path)
    lines: list[LogLine] = []
    async with registry_under_test() as registry:
        result = await registry.push(tarball, "big/registry:3", on_log=lines.append)
    assert all(isinstance(line, LogLine) and "\n" not in line for line in lines)
    stderr = [line for line in lines if line.stream == "stderr"]
    stdout = [line for line in lines if line.stream == "stdout"]
    assert any("pushed blob" in line for line in stderr)
    assert len(stdout) == 1
    assert stdout[0].endswith(result.digest)


async def test_a_plain_callable_gets_the_lines_too(tmp_path: Path) -> None:
    """on_log may be a plain function."""
    tarball = await saved(testbed.SAMPLE, tmp_path)
    lines: list[str] = []
    async with registry_under_test() as registry:
        await registry.push(tarball, "sample", on_log=lines.append)
    assert any("digest: sha256:" in line for line in lines)


async def test_lines_from_both_streams_arrive_in_the_order_written(tmp_path: Path) -> None:
    """stdout and stderr interleave as crane wrote them; an unfinished last line still comes."""
    tarball = await saved(testbed.SAMPLE, tmp_path)
    lines: list[LogLine] = []
    async with registry_under_test(crane_image=testbed.CRANE_CHATTY) as registry:
        result = await registry.push(tarball, "chatty/app:1", on_log=lines.append)
        endpoints = await registry.ready()
    said = [(line.stream, str(line)) for line in lines]
    expected = [
        pair for i in range(1, 6) for pair in (("stdout", f"out {i}"), ("stderr", f"err {i}"))
    ]
    assert said[:10] == expected
    assert sorted(said[10:]) == [
        ("stderr", "no newline at the end"),
        ("stdout", f"{endpoints.push_endpoint}/chatty/app:1@sha256:{'0' * 64}"),
    ]
    assert result.digest == f"sha256:{'0' * 64}"


async def test_an_oci_layout_is_pushed(tmp_path: Path) -> None:
    """An OCI image layout directory (made by skopeo) lands as its own manifest, and pulls."""
    layout = tmp_path / "layout"
    await testbed.oci_layout(testbed.SAMPLE, layout)
    manifest_ref = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    manifest = json.loads((layout / "blobs" / manifest_ref.replace(":", "/")).read_text())
    async with registry_under_test() as registry:
        result = await registry.push(layout, "layouts/sample:one")
        assert result.digest == manifest_ref
        assert await testbed.pulled_config_digest(result.ref) == manifest["config"]["digest"]


async def test_a_file_only_its_non_root_owner_can_read_is_pushed(tmp_path: Path) -> None:
    """crane runs as the source's owner: mode 0600, owned by uid 4321, still works.

    Run as a user (against a rootless engine), the file stays that user's own,
    which the containers' users other than root cannot read either.
    """
    tarball = await saved(testbed.SAMPLE, tmp_path)
    if os.geteuid() == 0:
        os.chown(tarball, 4321, 4321)
    tmp_path.chmod(0o755)
    async with registry_under_test() as registry:
        result = await registry.push(tarball, "owned/sample")
        source = testbed.config_digest(testbed.SAMPLE)
        assert await testbed.pulled_config_digest(result.ref) == source


async def test_push_image_exports_and_pushes_a_local_image() -> None:
    """A local image goes in under its own name, without a registry host."""
    async with registry_under_test() as registry:
        result = await registry.push_image(testbed.SAMPLE)
        assert result.ref.endswith(f"/{testbed.SAMPLE}")
        source = testbed.config_digest(testbed.SAMPLE)
        assert await testbed.pulled_config_digest(result.ref) == source
        renamed = await registry.push_image(testbed.SAMPLE, "renamed:v2")
        assert renamed.ref.endswith("/renamed:v2")
        assert renamed.digest == result.digest


async def test_push_image_leaves_no_temporary_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The exported tarball is removed once pushed."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    async with registry_under_test() as registry:
        await registry.push_image(testbed.SAMPLE)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["two images", "cut short", "corrupt gzip"])
async def test_a_tarball_crane_would_push_wrongly_or_refuse_is_refused_first(
    tmp_path: Path, kind: str
) -> None:
    """The tarball goes through the native pusher's reader before crane runs: what is wrong
    with it is an InvalidSourceError saying what, and no crane container starts."""
    whole = (await saved(testbed.SAMPLE, tmp_path)).read_bytes()
    tarball = tmp_path / "broken.tar"
    if kind == "two images":
        tarball = await saved(testbed.SAMPLE, tmp_path, testbed.SAMPLE_TWO)
        expected = "exactly one image"
    elif kind == "cut short":
        tarball.write_bytes(whole[: len(whole) // 2])  # a tar that breaks off
        expected = "ends in the middle"
    else:
        tarball.write_bytes(with_corrupt_gzip_layer(whole))
        # An OCI layout save (Docker 25+) names each blob by its digest: that check comes first.
        expected = "has the digest" if b"oci-layout" in whole else "is not valid gzip"
    async with registry_under_test() as registry:
        with pytest.raises(InvalidSourceError, match=expected):
            await registry.push(tarball, "broken/image:1")
        await registry.ready()
        assert len(session_resources(registry)) == 2  # the registry and its network: no crane


def with_corrupt_gzip_layer(save: bytes) -> bytes:
    """The save with the first layer its manifest.json names replaced by the gzip magic and
    junk, its config (and so its diff_id) kept: any engine's save."""
    with tarfile.open(fileobj=io.BytesIO(save)) as source:
        manifest = source.extractfile("manifest.json")
        assert manifest is not None
        first_layer = json.loads(manifest.read())[0]["Layers"][0]
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(save)) as source,
        tarfile.open(fileobj=out, mode="w") as tar,
    ):
        for member in source.getmembers():
            file = source.extractfile(member) if member.isreg() else None
            data = file.read() if file is not None else None
            if member.name == first_layer:
                assert data is not None, "the first layer is not a regular file"
                data = b"\x1f\x8b" + b"junk" * 100
                member.size = len(data)
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


async def test_crane_refusing_raises_push_error_with_its_message(tmp_path: Path) -> None:
    """crane's failure (the registry refuses a manifest over its 4 MiB limit, which the
    layout's reader takes) comes back as PushError with its exit code and last lines."""
    layout = tmp_path / "layout"
    await testbed.oci_layout(testbed.SAMPLE, layout)
    index = json.loads((layout / "index.json").read_text())
    entry = index["manifests"][0]
    blobs = layout / "blobs" / "sha256"
    manifest = json.loads((blobs / entry["digest"].removeprefix("sha256:")).read_bytes())
    manifest["annotations"] = {"padding": "x" * (5 << 20)}
    data = json.dumps(manifest).encode()
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    index["manifests"] = [{**entry, "digest": f"sha256:{digest}", "size": len(data)}]
    (layout / "index.json").write_text(json.dumps(index))
    expected = "MANIFEST_INVALID"
    async with registry_under_test() as registry:
        with pytest.raises(PushError) as caught:
            await registry.push(layout, "broken/image:1")
    error = caught.value
    assert error.exit_code == 1
    assert error.ref == "broken/image:1"
    assert any(expected in line for line in error.output), error.output
    assert expected in str(error)


@pytest.mark.parametrize(
    ("source", "ref", "error", "problem"),
    [
        ("missing.tar", "app:1", InvalidSourceError, "no such file"),
        ("not-a-layout", "app:1", InvalidSourceError, "not an OCI image layout"),
        ("random.tar", "app:1", InvalidSourceError, "not a tar archive"),
        ("sample.tar", "UPPER/case", InvalidReferenceError, "lowercase"),
        ("sample.tar", "app:bad tag", InvalidReferenceError, "tag"),
        ("sample.tar", "app@sha256:" + "0" * 64, InvalidReferenceError, "digest"),
        ("sample.tar", "127.0.0.1:5000/app", InvalidReferenceError, "no registry host"),
        ("sample.tar", "", InvalidReferenceError, "repository"),
    ],
)
async def test_bad_input_is_refused_before_anything_is_created(
    tmp_path: Path, source: str, ref: str, error: type[Exception], problem: str
) -> None:
    """Each bad input is a typed error, raised at once, and no crane container is ever created."""
    (tmp_path / "not-a-layout").mkdir()
    (tmp_path / "random.tar").write_bytes(os.urandom(4096))
    shutil.copy(await saved(testbed.SAMPLE, tmp_path), tmp_path / "sample.tar")
    since = time.time()
    # A registry that answers only 2 s after it starts: raising within 1.5 s
    # shows that the push did not wait for ready().
    async with registry_under_test(registry_image=testbed.REGISTRY_LATE) as registry:
        with anyio.fail_after(1.5), pytest.raises(error) as caught:
            await registry.push(tmp_path / source, ref)
        assert problem in str(caught.value)
        await registry.ready()
    assert testbed.containers_created(registry.session_id, since) == [registry.name]


async def test_a_tarball_with_no_compression_is_refused_by_crane_before_anything(
    tmp_path: Path,
) -> None:
    """crane gzips a tarball's layers itself: layer_compression="none" for one is refused,
    saying to use the native pusher, and no crane container is created."""
    tarball = await saved(testbed.SAMPLE, tmp_path)
    since = time.time()
    async with registry_under_test() as registry:
        with pytest.raises(InvalidArgumentError, match='pusher="native"') as caught:
            await registry.push(tarball, "never/pushed", layer_compression="none")
        assert caught.value.argument == "layer_compression"
        await registry.ready()
    assert testbed.containers_created(registry.session_id, since) == [registry.name]


async def test_push_image_of_a_missing_image_creates_nothing() -> None:
    """ImageNotFoundError; the image is never pulled and no crane container is created."""
    since = time.time()
    async with registry_under_test() as registry:
        with pytest.raises(ImageNotFoundError) as caught:
            await registry.push_image("ephemeral-registry-testbed/absent:1")
        await registry.ready()
    assert caught.value.pull is None
    assert testbed.containers_created(registry.session_id, since) == [registry.name]


async def test_push_image_of_a_file_says_to_use_push(tmp_path: Path) -> None:
    """A tarball's path given to push_image() is named as a file, not as a missing image."""
    tarball = tmp_path / "app.tar"
    tarball.write_bytes(b"")
    since = time.time()
    async with registry_under_test() as registry:
        with pytest.raises(InvalidArgumentError, match=r"is a file or directory here.*push\(path"):
            await registry.push_image(str(tarball))
        await registry.ready()
    assert testbed.containers_created(registry.session_id, since) == [registry.name]


async def test_push_image_of_an_image_id_needs_a_ref() -> None:
    """An image id has no name to push under."""
    image_id = testbed.inspect("image", testbed.SAMPLE)["Id"]  # the engine's id, whatever it hashes
    async with registry_under_test() as registry:
        with pytest.raises(InvalidReferenceError, match="pass ref="):
            await registry.push_image(image_id)
        result = await registry.push_image(image_id, "by-id:1")
        assert result.ref.endswith("/by-id:1")


async def test_eight_pushes_into_one_registry_at_once_all_land(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Concurrent pushes (more than max_concurrent_pushes) all arrive, each under its tag.

    On Docker before 29 their containers join the network one at a time
    (Identity.joins_concurrently): the starts never overlap there.
    """
    results: dict[int, PushResult] = {}
    starting, most_at_once = 0, 0
    start = DockerEngine.start

    async def counted_start(engine: DockerEngine, container_id: str) -> None:
        nonlocal starting, most_at_once
        starting += 1
        most_at_once = max(most_at_once, starting)
        try:
            await start(engine, container_id)
            await anyio.sleep(0.05)  # widen the window in which starts could overlap
        finally:
            starting -= 1

    monkeypatch.setattr(DockerEngine, "start", counted_start)
    async with registry_under_test(max_concurrent_pushes=3) as registry:

        async def push(number: int) -> None:
            image = testbed.SAMPLE if number % 2 else testbed.SAMPLE_TWO
            results[number] = await registry.push_image(image, f"many/app-{number}:v{number}")

        async with anyio.create_task_group() as tg:
            for number in range(8):
                tg.start_soon(push, number)
        endpoints = await registry.ready()
        catalog = (await get(endpoints.pull_endpoint, "/v2/_catalog")).json()
        assert sorted(catalog["repositories"]) == sorted(f"many/app-{n}" for n in range(8))
        for number, result in results.items():
            digest = await manifest_digest(endpoints, f"many/app-{number}", f"v{number}")
            assert digest == result.digest
    assert len({results[n].digest for n in range(8)}) == 2
    identity = registry._engine.known_identity
    assert identity is not None
    if not identity.joins_concurrently:
        assert most_at_once == 1


async def test_two_registries_at_once_each_get_their_own_images() -> None:
    """Pushes to one registry never show up in the other."""
    async with registry_under_test() as one, registry_under_test() as two:
        async with anyio.create_task_group() as tg:
            tg.start_soon(one.push_image, testbed.SAMPLE, "first/image")
            tg.start_soon(two.push_image, testbed.SAMPLE_TWO, "second/image")
        for registry, repositories in ((one, ["first/image"]), (two, ["second/image"])):
            endpoints = await registry.ready()
            catalog = (await get(endpoints.pull_endpoint, "/v2/_catalog")).json()
            assert catalog["repositories"] == repositories


async def test_a_push_that_runs_too_long_is_stopped_and_removed(tmp_path: Path) -> None:
    """push_timeout ends a hung crane with PushTimeoutError, with its lines; its container is
    removed.

    The limit counts from the push's start, so the registry is made ready first: the
    bring-up of a fresh engine can take most of a second, and crane must have started.
    """
    tarball = await saved(testbed.SAMPLE, tmp_path)
    async with registry_under_test(crane_image=testbed.CRANE_HANGS, push_timeout=2.0) as registry:
        await registry.ready()
        with pytest.raises(PushTimeoutError) as caught:
            await registry.push(tarball, "slow/image")
        assert (caught.value.stage, caught.value.limit) == ("push", 2.0)
        assert "did not finish within 2 s" in str(caught.value)
        assert caught.value.output == ("crane: starting",)
        assert len(session_resources(registry)) == 2  # the registry and its network


async def test_checking_a_source_is_bounded_by_push_timeout(tmp_path: Path) -> None:
    """Reading a tarball through the checks before crane runs counts against push_timeout."""
    tarball = await saved(testbed.REGISTRY3, tmp_path)  # 55 MB: its check takes a while
    async with registry_under_test(push_timeout=0.001) as registry:
        with pytest.raises(
            PushTimeoutError, match="reading the source to check it took longer"
        ) as caught:
            await registry.push(tarball, "slow/check")
        assert caught.value.stage == "check"
        await registry.ready()
        assert len(session_resources(registry)) == 2  # the registry and its network: no crane


async def test_a_missing_crane_image_fails_pushes_not_the_registry(tmp_path: Path) -> None:
    """The registry comes up; each push says the crane image is missing."""
    tarball = await saved(testbed.SAMPLE, tmp_path)
    async with registry_under_test(crane_image="ephemeral-registry-testbed/no-crane") as registry:
        await registry.ready()
        for _ in range(2):
            with pytest.raises(ImageNotFoundError, match="no-crane"):
                await registry.push(tarball, "xy")


def _crane_image_checks(proxy: EngineProxy) -> list[str]:
    """The engine requests that asked about the test bed's crane image."""
    return [request for request in proxy.requests if f"/images/{testbed.CRANE}/" in request]


def _files_as_the_engine_behind_the_proxy_sees_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether crane's source is bind-mounted or copied in is the real engine's answer, not the
    proxy's (a socket of this host's): a Desktop-shaped engine has a /tmp of its own."""
    shares_files = _host.shares_files

    async def behind_the_proxy(address: str, *args: Any, **kwargs: Any) -> bool:
        return await shares_files(testbed.ENGINE, *args, **kwargs)

    monkeypatch.setattr(_host, "shares_files", behind_the_proxy)


async def test_the_crane_image_is_checked_beside_the_bring_up_when_crane_is_the_pusher(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """pusher="crane" (the default): the crane image is checked once, beside the bring-up
    (one request, sent long before the registry answers), and not again by a push."""
    tarball = await saved(testbed.SAMPLE, tmp_path)
    _files_as_the_engine_behind_the_proxy_sees_them(monkeypatch)
    async with EngineProxy.running(tmp_path / "engine.sock") as proxy:
        monkeypatch.setenv("DOCKER_HOST", proxy.url)
        async with registry_under_test() as registry:
            await registry.ready()
            assert len(_crane_image_checks(proxy)) == 1, proxy.requests
            await registry.push(tarball, "crane/sample")
            assert len(_crane_image_checks(proxy)) == 1
        assert session_resources(registry) == set()


async def test_crane_pushes_at_once_check_the_crane_image_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """In a native block, the crane image is checked by the first crane push, once for all."""
    tarball = await saved(testbed.SAMPLE, tmp_path)
    _files_as_the_engine_behind_the_proxy_sees_them(monkeypatch)
    async with EngineProxy.running(tmp_path / "engine.sock") as proxy:
        monkeypatch.setenv("DOCKER_HOST", proxy.url)
        async with registry_under_test(pusher="native") as registry:
            await registry.ready()
            assert _crane_image_checks(proxy) == []
            results: list[PushResult] = []

            async def push(ref: str) -> None:
                results.append(await registry.push(tarball, ref, pusher="crane"))

            async with anyio.create_task_group() as tg:
                for ref in ("at-once/one", "at-once/two", "at-once/three"):
                    tg.start_soon(push, ref)
            assert len(results) == 3
            assert len(_crane_image_checks(proxy)) == 1, _crane_image_checks(proxy)
        assert session_resources(registry) == set()


async def test_pushing_after_the_block_exits_is_refused(tmp_path: Path) -> None:
    """RegistryClosedError, with nothing created."""
    tarball = await saved(testbed.SAMPLE, tmp_path)
    async with registry_under_test() as registry:
        await registry.ready()
    with pytest.raises(RegistryClosedError):
        await registry.push(tarball, "late")
    with pytest.raises(RegistryClosedError):
        await registry.push_image(testbed.SAMPLE)


@pytest.mark.parametrize(
    ("layer_compression", "layer_type"),
    [
        (None, "application/vnd.oci.image.layer.v1.tar+gzip"),
        ("gzip", "application/vnd.oci.image.layer.v1.tar+gzip"),
        ("none", "application/vnd.oci.image.layer.v1.tar"),
    ],
)
async def test_push_image_layers_are_gzipped_unless_none_is_asked(
    layer_compression: LayerCompression | None, layer_type: str
) -> None:
    """By default (the registry's gzip, as for the native pusher) the image's layers are
    gzipped (into crane's layout, by the library); layer_compression="none" pushes them as
    they are."""
    async with registry_under_test() as registry:
        result = await registry.push_image(testbed.SAMPLE, layer_compression=layer_compression)
        endpoints = await registry.ready()
        repository = testbed.SAMPLE.split(":")[0]
        response = await get(
            endpoints.pull_endpoint,
            f"/v2/{repository}/manifests/{result.digest}",
            Accept=MANIFEST_TYPES,
        )
        assert {layer["mediaType"] for layer in response.json()["layers"]} == {layer_type}
        source = testbed.config_digest(testbed.SAMPLE)
        assert await testbed.pulled_config_digest(result.ref) == source


async def test_by_default_either_pusher_gzips_an_images_layers() -> None:
    """layer_compression means the same whichever the pusher: the same call pushes the
    same image, its layers gzipped, by crane or by the native pusher: the same layers."""
    layers: dict[str, list[tuple[str, str, int]]] = {}
    async with registry_under_test() as registry:
        endpoints = await registry.ready()
        for pusher in ("crane", "native"):
            result = await registry.push_image(testbed.SAMPLE, f"default/{pusher}", pusher=pusher)
            response = await get(
                endpoints.pull_endpoint,
                f"/v2/default/{pusher}/manifests/{result.digest}",
                Accept=MANIFEST_TYPES,
            )
            manifest = response.json()
            kinds = {layer["mediaType"] for layer in manifest["layers"]}
            assert all(kind.endswith("gzip") for kind in kinds), (pusher, kinds)
            assert manifest["config"]["digest"] == testbed.config_digest(testbed.SAMPLE)
            layers[pusher] = [
                (layer["mediaType"], layer["digest"], layer["size"]) for layer in manifest["layers"]
            ]
    assert layers["crane"] == layers["native"]
