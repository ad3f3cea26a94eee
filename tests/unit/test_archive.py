"""A push source as a tar streamed from disk: what goes in, its owner, and a changed file."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from ephemeral_registry import InvalidSourceError
from ephemeral_registry._archive import Archive, of_layout, of_tarball, write
from ephemeral_registry._oci.layout import read_layout_blocking
from ephemeral_registry._oci.stream import CHUNK

from .test_oci_layout import manifest, put, write_index

pytestmark = pytest.mark.anyio

AT = "/ephemeral-registry/source"


async def written(archive: Archive) -> tuple[bytes, list[int]]:
    """The tar ``write`` makes, and the size of each chunk it sent."""
    chunks: list[bytes] = []

    async def send(chunk: bytes) -> None:
        chunks.append(chunk)

    await write(archive, send)
    return b"".join(chunks), [len(chunk) for chunk in chunks]


def members(tar: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(tar)) as opened:
        return {member.name: member for member in opened.getmembers()}


def content(tar: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(tar)) as opened:
        file = opened.extractfile(name)
        assert file is not None
        return file.read()


async def test_a_tarball_is_one_file_at_the_path_given_owned_by_crane(tmp_path: Path) -> None:
    """Its directories, then the file; owned by uid:gid, read-only, whatever its own mode."""
    source = tmp_path / "image.tar"
    data = os.urandom(2 * CHUNK + 1000)  # several chunks, and a last block to pad
    source.write_bytes(data)
    source.chmod(0o600)
    tar, sizes = await written(of_tarball(source, at=AT, uid=65532, gid=65533))
    found = members(tar)
    assert list(found) == ["ephemeral-registry", "ephemeral-registry/source"]
    assert found["ephemeral-registry"].isdir()
    member = found["ephemeral-registry/source"]
    assert (member.size, member.mode, member.uid, member.gid) == (len(data), 0o444, 65532, 65533)
    assert content(tar, "ephemeral-registry/source") == data
    assert len(tar) % 512 == 0
    assert tar.endswith(bytes(1024))
    assert max(sizes) <= CHUNK + 1536  # a header goes with the first chunk of its file


async def test_a_layout_is_exactly_the_files_its_check_read(tmp_path: Path) -> None:
    """oci-layout, index.json and each blob a descriptor names; nothing else of the directory,
    not even a link out of it that nothing names."""
    layout = tmp_path / "layout"
    layout.mkdir()
    write_index(layout, manifest(layout))
    put(layout, b"a blob nothing names")
    (layout / "blobs" / "sha256" / ("0" * 64)).symlink_to("/etc/passwd")
    (layout / "notes.txt").write_text("not the layout's")
    tar, _ = await written(of_layout(read_layout_blocking(layout), at=AT, uid=0, gid=0))
    found = members(tar)
    named = read_layout_blocking(layout)
    blobs = {
        f"ephemeral-registry/source/blobs/sha256/{digest.removeprefix('sha256:')}"
        for digest in [*named.blobs(), *(m.descriptor.digest for m in named.manifests())]
    }
    directories = {
        "ephemeral-registry",
        "ephemeral-registry/source",
        "ephemeral-registry/source/blobs",
        "ephemeral-registry/source/blobs/sha256",
    }
    files = {"ephemeral-registry/source/oci-layout", "ephemeral-registry/source/index.json"}
    assert set(found) == directories | files | blobs
    assert len(blobs) == 3  # manifest, config, layer
    assert all(found[name].isdir() and found[name].mode == 0o755 for name in directories)
    assert all(found[name].isreg() for name in files | blobs)
    # Names over 100 bytes are whole (a PAX header carries them).
    for name in blobs:
        original = layout / name.removeprefix("ephemeral-registry/source/")
        assert content(tar, name) == original.read_bytes()


async def test_a_blob_linked_inside_the_layout_is_copied_as_a_file(tmp_path: Path) -> None:
    """A link that stays inside the layout passed its check: the copy is the file it names."""
    layout = tmp_path / "layout"
    layout.mkdir()
    write_index(layout, manifest(layout))
    named = read_layout_blocking(layout)
    config = next(iter(named.manifests())).config
    path = named.blob_path(config)
    kept = layout / "kept"
    path.rename(kept)
    path.symlink_to("../../kept")
    tar, _ = await written(of_layout(read_layout_blocking(layout), at=AT, uid=0, gid=0))
    name = f"ephemeral-registry/source/blobs/sha256/{config.digest.removeprefix('sha256:')}"
    assert members(tar)[name].isreg()
    assert content(tar, name) == kept.read_bytes()


@pytest.mark.parametrize("change", ["shorter", "longer"])
async def test_a_file_that_changed_since_it_was_planned_is_an_invalid_source(
    tmp_path: Path, change: str
) -> None:
    """Never a tar cut short or padded: the engine would unpack whatever arrived."""
    source = tmp_path / "image.tar"
    source.write_bytes(b"x" * 4096)
    archive = of_tarball(source, at=AT, uid=0, gid=0)
    source.write_bytes(b"x" * (100 if change == "shorter" else 8192))
    with pytest.raises(InvalidSourceError, match="it changed"):
        await written(archive)


def _layout_whose_layer_changes(tmp_path: Path, content: bytes) -> Archive:
    """The copy of a checked layout, planned; then its layer's file written with ``content``."""
    layout = tmp_path / "layout"
    layout.mkdir()
    write_index(layout, manifest(layout))
    named = read_layout_blocking(layout)
    archive = of_layout(named, at=AT, uid=0, gid=0)
    layer = next(iter(named.manifests())).layers[0]
    named.blob_path(layer).write_bytes(content)
    return archive


async def test_a_layout_blob_that_changed_fails_the_layouts_own_check(tmp_path: Path) -> None:
    """A blob is opened as the layout's check opens it: of its descriptor's size, contained."""
    archive = _layout_whose_layer_changes(tmp_path, b"another size")
    with pytest.raises(InvalidSourceError, match="it changed"):
        await written(archive)


async def test_a_layout_blob_whose_bytes_changed_is_never_sent_whole(tmp_path: Path) -> None:
    """Same size, other bytes: hashed as copied, the last chunk held back, then refused."""
    archive = _layout_whose_layer_changes(tmp_path, b"LAYER")
    sent: list[bytes] = []

    async def send(chunk: bytes) -> None:
        sent.append(chunk)

    with pytest.raises(InvalidSourceError, match="changed since it was checked"):
        await write(archive, send)
    assert b"LAYER" not in b"".join(sent)


def test_a_missing_tarball_is_an_invalid_source(tmp_path: Path) -> None:
    """Planned before anything is created: the error comes first."""
    with pytest.raises(InvalidSourceError, match="cannot be read"):
        of_tarball(tmp_path / "gone.tar", at=AT, uid=0, gid=0)
