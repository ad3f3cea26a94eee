"""Unpacking a docker save tar stream into an OCI image layout: tar formats and broken input."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ephemeral_registry import DockerEngineError
from ephemeral_registry._export import OCI_LAYER, OCI_LAYER_GZIP, unpack_save

pytestmark = pytest.mark.anyio


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer(text: str) -> bytes:
    """A layer: a small tar holding one file."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = text.encode()
        info = tarfile.TarInfo("file.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def save_tar(
    members: Members,
    *,
    tar_format: int = tarfile.USTAR_FORMAT,
) -> bytes:
    """A tar of (name, bytes) files and (name, "->target") symlinks."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tar_format) as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if isinstance(content, str):
                info.type = tarfile.SYMTYPE
                info.linkname = content.removeprefix("->")
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


Members = list[tuple[str, bytes | str]]


def docker_save(
    layers: list[bytes], *, layer_dir: str = "", diff_ids: list[str] | None = None
) -> tuple[Members, bytes]:
    """The members of a docker save tar (the 20.10 layout) for an image of ``layers``."""
    config = json.dumps(
        {"rootfs": {"type": "layers", "diff_ids": diff_ids or [sha(data) for data in layers]}}
    ).encode()
    config_name = sha(config).removeprefix("sha256:") + ".json"
    names = [f"{layer_dir}{n:064x}/layer.tar" for n in range(len(layers))]
    manifest = json.dumps([{"Config": config_name, "RepoTags": ["x:1"], "Layers": names}])
    members: Members = list(zip(names, layers, strict=True))
    return [*members, (config_name, config), ("manifest.json", manifest.encode())], config


def reader(data: bytes) -> Callable[[int], Awaitable[bytes]]:
    """read_exactly over bytes, like aiohttp's: IncompleteReadError (an EOFError) at the end."""
    stream = io.BytesIO(data)

    async def read_exactly(size: int) -> bytes:
        got = stream.read(size)
        if len(got) < size:
            raise EOFError("stream ended")
        return got

    return read_exactly


async def unpacked(tar: bytes, tmp_path: Path) -> tuple[dict[str, Any], Path]:
    layout = tmp_path / "layout"
    result = await unpack_save("x:1", reader(tar), layout)
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["digest"] == result.manifest_digest
    blob = layout / "blobs" / "sha256" / result.manifest_digest.removeprefix("sha256:")
    return json.loads(blob.read_text()), layout


def blob_bytes(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


async def test_a_docker_save_becomes_an_oci_layout_with_uncompressed_layers(tmp_path: Path) -> None:
    """Config and layers become blobs named by their digests; layers keep their bytes."""
    layers = [layer("one"), layer("two")]
    members, config = docker_save(layers)
    manifest, layout = await unpacked(save_tar(members), tmp_path)
    assert (layout / "oci-layout").read_text() == '{"imageLayoutVersion":"1.0.0"}'
    assert manifest["config"]["digest"] == sha(config)
    assert [entry["digest"] for entry in manifest["layers"]] == [sha(data) for data in layers]
    assert {entry["mediaType"] for entry in manifest["layers"]} == {OCI_LAYER}
    for entry, data in zip(manifest["layers"], layers, strict=True):
        assert blob_bytes(layout, entry["digest"]) == data
        assert entry["size"] == len(data)
    assert not list((layout / "blobs" / "sha256").glob(".partial-*"))


@pytest.mark.parametrize("tar_format", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
async def test_long_names_in_pax_and_gnu_headers(tmp_path: Path, tar_format: int) -> None:
    """Names over 100 characters arrive in extended headers; both kinds are read."""
    layers = [layer("deep")]
    members, _ = docker_save(layers, layer_dir="d" * 120 + "/")
    manifest, _ = await unpacked(save_tar(members, tar_format=tar_format), tmp_path)
    assert manifest["layers"][0]["digest"] == sha(layers[0])


async def test_a_repeated_layer_is_a_symlink_to_the_first(tmp_path: Path) -> None:
    """docker save links a layer that appears twice; the manifest lists it twice."""
    data = layer("same")
    members, _ = docker_save([data, data])
    first, second = members[0][0], members[1][0]
    members[1] = (second, "->../" + first)
    manifest, _ = await unpacked(save_tar(members), tmp_path)
    assert [entry["digest"] for entry in manifest["layers"]] == [sha(data)] * 2


async def test_a_gzipped_layer_keeps_its_compressed_type(tmp_path: Path) -> None:
    """A layer already compressed is pushed as gzip, and not checked against its diff_id."""
    compressed = gzip.compress(layer("zipped"))
    members, _ = docker_save([compressed], diff_ids=[sha(layer("zipped"))])
    manifest, _ = await unpacked(save_tar(members), tmp_path)
    assert manifest["layers"][0]["mediaType"] == OCI_LAYER_GZIP
    assert manifest["layers"][0]["digest"] == sha(compressed)


@pytest.mark.parametrize(
    ("breakage", "problem"),
    [
        ("cut short", "ended in the middle"),
        ("no manifest", "no manifest.json"),
        ("two images", "exactly one image"),
        ("wrong diff_id", "its config says"),
        ("missing layer", "which the tar does not hold"),
        ("not a tar", "not a tar stream"),
    ],
)
async def test_broken_exports_are_errors(tmp_path: Path, breakage: str, problem: str) -> None:
    """Each is a DockerEngineError saying what is wrong, never a silently wrong image."""
    layers = [layer("one")]
    members, _ = docker_save(
        layers, diff_ids=[sha(b"other")] if breakage == "wrong diff_id" else None
    )
    if breakage == "no manifest":
        members = members[:-1]
    if breakage == "two images":
        entries = json.loads(members[-1][1])
        members[-1] = ("manifest.json", json.dumps(entries * 2).encode())
    if breakage == "missing layer":
        members = members[1:]
    tar = save_tar(members)
    if breakage == "cut short":
        tar = tar[: len(tar) // 2]
    if breakage == "not a tar":
        tar = b"\x01" * 2048
    with pytest.raises(DockerEngineError) as caught:
        await unpack_save("x:1", reader(tar), tmp_path / "layout")
    assert problem in str(caught.value)
    assert "export the image x:1" in str(caught.value)
