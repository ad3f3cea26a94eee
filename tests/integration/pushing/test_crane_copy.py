"""crane without host paths: the source copied into crane's container through the engine's API.

The engine under test sees this host's files, so each test here forces the
decision (``_host.shares_files``, the one function that makes it) to "no",
and looks at each crane container before it starts: no bind mount, and the
files copied in. The Docker Desktop-shaped engines of the test bed answer
"no" by themselves (test_engines_that_do_not_share_files_are_told_apart).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest

from ephemeral_registry import (
    EngineTimeoutError,
    InvalidSourceError,
    LayerCompression,
    _archive,
    _host,
)
from ephemeral_registry._discovery import EngineAddress
from ephemeral_registry._engine import DockerEngine, open_engine
from ephemeral_registry._source import MOUNT_POINT

from ..support import testbed
from ..support.helpers import registry_under_test, saved, session_resources

pytestmark = pytest.mark.anyio

SOURCE = MOUNT_POINT.lstrip("/")


@dataclass
class Crane:
    """A crane container as it was just before its start."""

    mounts: list[Any]
    user: str
    files: dict[str, tarfile.TarInfo] = field(default_factory=dict)


@pytest.fixture
def copied(monkeypatch: pytest.MonkeyPatch) -> list[Crane]:
    """Force the copy, and record each crane container before its start: its mounts,
    its user, and what the engine holds at the source's path in it."""
    cranes: list[Crane] = []

    async def does_not_share(*args: object, **kwargs: object) -> bool:
        return False

    monkeypatch.setattr(_host, "shares_files", does_not_share)
    start = DockerEngine.start

    async def looked_at_first(engine: DockerEngine, container_id: str) -> None:
        info = json.loads(await testbed.adocker("container", "inspect", container_id))[0]
        if "-push-" in info["Name"]:
            crane = Crane(info["Mounts"], info["Config"]["User"])
            tar = await testbed.archive_of(container_id, MOUNT_POINT)
            with tarfile.open(fileobj=io.BytesIO(tar)) as opened:
                crane.files = {member.name: member for member in opened.getmembers()}
            cranes.append(crane)
        await start(engine, container_id)

    monkeypatch.setattr(DockerEngine, "start", looked_at_first)
    return cranes


async def test_a_tarball_only_its_owner_can_read_is_copied_in_and_pushed(
    tmp_path: Path, copied: list[Crane]
) -> None:
    """Mode 0600, owned by uid 4321: crane runs as its owner and reads the copy, its own."""
    tarball = await saved(testbed.SAMPLE, tmp_path)
    if os.geteuid() == 0:
        os.chown(tarball, 4321, 4321)
    async with registry_under_test() as registry:
        result = await registry.push(tarball, "copied/tarball:1")
        source = testbed.config_digest(testbed.SAMPLE)
        assert await testbed.pulled_config_digest(result.ref) == source
    (crane,) = copied
    assert crane.mounts == []
    owner = f"{tarball.stat().st_uid}:{tarball.stat().st_gid}"
    assert crane.user == ("0:0" if testbed.is_rootless() else owner)
    # docker cp names the copy after its path in the container.
    (member,) = crane.files.values()
    assert member.isreg()
    assert member.size == tarball.stat().st_size


async def test_an_oci_layout_is_copied_in_and_pushed(tmp_path: Path, copied: list[Crane]) -> None:
    """Its files, and only those its check read, land where crane reads; it pushes as itself."""
    layout = tmp_path / "layout"
    await testbed.oci_layout(testbed.SAMPLE, layout)
    (layout / "notes.txt").write_text("not the layout's: never copied")
    manifest_ref = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    manifest = json.loads((layout / "blobs" / manifest_ref.replace(":", "/")).read_text())
    async with registry_under_test() as registry:
        result = await registry.push(layout, "copied/layout:one")
        assert result.digest == manifest_ref
        assert await testbed.pulled_config_digest(result.ref) == manifest["config"]["digest"]
    (crane,) = copied
    assert crane.mounts == []
    blobs = {manifest_ref, manifest["config"]["digest"]}
    blobs |= {layer["digest"] for layer in manifest["layers"]}
    files = {name.partition("/")[2] for name, info in crane.files.items() if info.isreg()}
    assert files == {"oci-layout", "index.json"} | {f"blobs/{d.replace(':', '/')}" for d in blobs}


@pytest.mark.parametrize("layer_compression", ["none", "gzip"])
async def test_push_image_copies_its_export_in_and_leaves_no_temporary_file(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    copied: list[Crane],
    layer_compression: LayerCompression,
) -> None:
    """The export (a layout, its plain layers gzipped with gzip) is copied in; the temporary
    one goes."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    async with registry_under_test() as registry:
        result = await registry.push_image(testbed.SAMPLE, layer_compression=layer_compression)
        source = testbed.config_digest(testbed.SAMPLE)
        assert await testbed.pulled_config_digest(result.ref) == source
    assert list(tmp_path.iterdir()) == []
    (crane,) = copied
    assert crane.mounts == []
    assert crane.files


async def test_a_layout_with_a_link_out_of_it_is_refused_before_anything_is_created(
    tmp_path: Path, copied: list[Crane]
) -> None:
    """A blob that is a link to a file outside the layout (even one of the same bytes) is an
    InvalidSourceError, and no crane container is created: nothing of it is sent."""
    layout = tmp_path / "layout"
    await testbed.oci_layout(testbed.SAMPLE, layout)
    manifest_ref = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    manifest = json.loads((layout / "blobs" / manifest_ref.replace(":", "/")).read_text())
    layer = layout / "blobs" / manifest["layers"][0]["digest"].replace(":", "/")
    outside = tmp_path / "outside"
    layer.rename(outside)
    layer.symlink_to(outside)
    since = time.time()
    async with registry_under_test() as registry:
        with pytest.raises(InvalidSourceError, match="a link leads out of the layout"):
            await registry.push(layout, "copied/linked:1")
        await registry.ready()
    assert testbed.containers_created(registry.session_id, since) == [registry.name]
    assert copied == []


@pytest.fixture
def copy_under_way(monkeypatch: pytest.MonkeyPatch) -> anyio.Event:
    """A copy that sends its first chunk, sets the event, then never goes on."""
    started = anyio.Event()

    async def stuck(archive: _archive.Archive, send: _archive.Send) -> None:
        await send(b"\0" * 512)
        started.set()
        await anyio.sleep_forever()

    monkeypatch.setattr(_archive, "write", stuck)
    return started


@pytest.mark.parametrize("what", ["push", "push_image"])
async def test_a_copy_cancelled_midway_leaves_nothing_behind(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    copied: list[Crane],
    copy_under_way: anyio.Event,
    what: str,
) -> None:
    """Cancelled while the engine takes the tar: the crane container is removed (the copy's
    temporary export too), the registry goes on, and the block leaves nothing."""
    tarball = await saved(testbed.SAMPLE, tmp_path)
    exports = tmp_path / "exports"
    exports.mkdir()
    monkeypatch.setenv("TMPDIR", str(exports))
    monkeypatch.setattr(tempfile, "tempdir", None)
    async with registry_under_test() as registry:

        async def push() -> None:
            if what == "push":
                await registry.push(tarball, "cancelled/copy:1")
            else:
                await registry.push_image(testbed.SAMPLE)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(push)
                await copy_under_way.wait()
                tg.cancel_scope.cancel()
        assert len(session_resources(registry)) == 2  # the registry and its network
        assert list(exports.iterdir()) == []
        assert copied == []  # never started
        result = await registry.ready()
    assert testbed.labelled(f"{testbed.LABEL}={registry.session_id}") == set()
    assert result.pull_endpoint


async def test_a_source_that_changes_during_the_copy_is_refused_and_nothing_is_left(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, copied: list[Crane]
) -> None:
    """The tarball shrinks after its check: InvalidSourceError, not a tar cut short that
    crane would read; its container is removed before it ever starts."""
    tarball = await saved(testbed.SAMPLE, tmp_path)
    write = _archive.write

    async def shrunk_first(archive: _archive.Archive, send: _archive.Send) -> None:
        with tarball.open("r+b") as file:
            file.truncate(tarball.stat().st_size // 2)
        await write(archive, send)

    monkeypatch.setattr(_archive, "write", shrunk_first)
    async with registry_under_test() as registry:
        with pytest.raises(InvalidSourceError, match="it changed"):
            await registry.push(tarball, "copied/changed:1")
        assert len(session_resources(registry)) == 2
    assert copied == []


async def test_a_copy_that_makes_no_progress_ends_after_request_timeout(
    tmp_path: Path, copied: list[Crane], copy_under_way: anyio.Event
) -> None:
    """No chunk taken for request_timeout: EngineTimeoutError, and the container is removed."""
    tarball = await saved(testbed.SAMPLE, tmp_path)
    async with registry_under_test(request_timeout=3.0) as registry:
        await registry.ready()
        started = time.monotonic()
        with pytest.raises(EngineTimeoutError, match="request_timeout") as caught:
            await registry.push(tarball, "copied/stalled:1")
        assert 3.0 <= time.monotonic() - started < 15
        assert "copy into the container" in str(caught.value)
        assert len(session_resources(registry)) == 2
    assert copy_under_way.is_set()


async def test_the_default_engine_shares_this_hosts_files() -> None:
    """Docker 20.10 at /var/run/docker.sock, as root here: its mount namespace is this one."""
    if testbed.ENGINE != "unix:///var/run/docker.sock" or os.geteuid() != 0:
        pytest.skip("the test bed's default engine, as root")
    address = EngineAddress(testbed.ENGINE, "the test bed")
    async with open_engine(None, address, request_timeout=10) as engine:
        assert await engine.shares_files()


OTHER_NAMESPACES = {
    "desktop-forwarded": "/run/ephemeral-registry-testbed/desktop-forwarded/docker.sock",
    "desktop-isolated": "/run/ephemeral-registry-testbed/desktop-isolated/docker.sock",
    "podman-rootless": "/run/ephemeral-registry-testbed/podman-rootless/podman.sock",
}


@pytest.mark.parametrize("name", sorted(OTHER_NAMESPACES))
async def test_engines_that_do_not_share_files_are_told_apart(name: str) -> None:
    """The test bed's engines with mount namespaces of their own (Docker Desktop-shaped ones,
    whose /tmp is their own; rootless Podman's) do not, though they run on this host."""
    path = OTHER_NAMESPACES[name]
    if not Path(path).exists() or not os.access(path, os.R_OK | os.W_OK):
        pytest.skip(f"the test bed's {name} engine is not set up (or not this user's to use)")
    async with open_engine(None, EngineAddress(f"unix://{path}", name), request_timeout=10) as e:
        assert await e.shares_files() is False
