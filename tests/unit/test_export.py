"""Unpacking a docker save tar stream into an OCI image layout: tar formats and broken input."""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import pytest
import zstandard

from ephemeral_registry import ExportError, ImageNotFoundError, InvalidSourceError, _export
from ephemeral_registry._export import Layout, check_tarball, unpack_save
from ephemeral_registry._oci import threads
from ephemeral_registry._oci.documents import MAX_DOCUMENT
from ephemeral_registry._oci.media_types import (
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
)
from ephemeral_registry._oci.stream import CHUNK
from ephemeral_registry._platform import Platform

PLATFORM = Platform("linux", "amd64")


async def engine_platform() -> Platform:
    """The platform of the engine the save came from."""
    return PLATFORM


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


def image_config(diff_ids: list[str], architecture: str = "amd64") -> bytes:
    return json.dumps(
        {
            "os": "linux",
            "architecture": architecture,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    ).encode()


def docker_save(
    layers: list[bytes], *, layer_dir: str = "", diff_ids: list[str] | None = None
) -> tuple[Members, bytes]:
    """The members of a docker save tar (the 20.10 layout) for an image of ``layers``."""
    config = image_config(diff_ids or [sha(data) for data in layers])
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
    result = await unpack_save("x:1", reader(tar), layout, engine_platform=engine_platform)
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


def zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


@pytest.mark.parametrize(
    ("compress", "media_type"),
    [
        (gzip.compress, OCI_LAYER_GZIP),
        (lambda data: gzip.compress(data[:100]) + gzip.compress(data[100:]), OCI_LAYER_GZIP),
        (zstd, OCI_LAYER_ZSTD),
    ],
    ids=["gzip", "gzip-two-members", "zstd"],
)
async def test_a_compressed_layer_keeps_its_compression_and_is_checked_uncompressed(
    tmp_path: Path, compress: Callable[[bytes], bytes], media_type: str
) -> None:
    """Recognised by content; pushed as it is, with its media type; its diff_id checked."""
    plain = layer("zipped")
    compressed = compress(plain)
    members, _ = docker_save([compressed], diff_ids=[sha(plain)])
    manifest, _ = await unpacked(save_tar(members), tmp_path)
    assert manifest["layers"][0]["mediaType"] == media_type
    assert manifest["layers"][0]["digest"] == sha(compressed)


@pytest.mark.parametrize("compress", [gzip.compress, zstd], ids=["gzip", "zstd"])
async def test_a_compressed_layer_that_does_not_match_its_diff_id_is_an_error(
    tmp_path: Path, compress: Callable[[bytes], bytes]
) -> None:
    """The check applies to the uncompressed content: a corrupt layer is never pushed."""
    members, _ = docker_save([compress(layer("zipped"))], diff_ids=[sha(layer("other"))])
    with pytest.raises(ExportError, match="its config says"):
        await unpacked(save_tar(members), tmp_path)


async def gzip_unpacked(tar: bytes, layout: Path) -> tuple[dict[str, Any], Layout]:
    result = await unpack_save(
        "x:1", reader(tar), layout, layer_compression="gzip", engine_platform=engine_platform
    )
    return json.loads(blob_bytes(layout, result.manifest_digest)), result


async def test_gzip_replaces_each_uncompressed_layer_by_its_gzip(tmp_path: Path) -> None:
    """The manifest names a gzip blob whose content is the layer (its diff_id), the config is
    unchanged, and the uncompressed blob is gone; a layer named twice is gzipped once."""
    plain, other = layer("plain"), layer("other" * 300_000)  # the second spans chunks
    members, config = docker_save([plain, other, plain])
    manifest, result = await gzip_unpacked(save_tar(members), tmp_path / "layout")
    layout = tmp_path / "layout"
    assert manifest["config"]["digest"] == sha(config)
    entries = manifest["layers"]
    assert {entry["mediaType"] for entry in entries} == {OCI_LAYER_GZIP}
    assert entries[0] == entries[2]
    for entry, data in zip(entries, [plain, other, plain], strict=True):
        stored = blob_bytes(layout, entry["digest"])
        assert sha(stored) == entry["digest"]
        assert len(stored) == entry["size"]
        assert sha(gzip.decompress(stored)) == sha(data)  # the config's diff_id
        assert not (layout / "blobs" / "sha256" / sha(data).removeprefix("sha256:")).exists()
    (image,) = result.images
    assert [(blob.digest, blob.size, blob.compression) for blob in image.layers] == [
        (entry["digest"], entry["size"], "gzip") for entry in entries
    ]
    assert [blob.diff_id for blob in image.layers] == [sha(plain), sha(other), sha(plain)]
    blobs = [path for path in (layout / "blobs" / "sha256").iterdir() if path.is_file()]
    assert not [path for path in blobs if path.name.startswith(".")]
    written = sum(path.stat().st_size for path in blobs)
    assert result.size == written + len(plain)  # plain came twice, as two members of the save


async def test_gzip_leaves_compressed_layers_as_they_are(tmp_path: Path) -> None:
    """A gzip and a zstd layer keep their bytes and media types; only the plain one is gzipped."""
    one, two, three = layer("gzip"), layer("zstd"), layer("none")
    members, _ = docker_save(
        [gzip.compress(one), zstd(two), three], diff_ids=[sha(one), sha(two), sha(three)]
    )
    manifest, _ = await gzip_unpacked(save_tar(members), tmp_path / "layout")
    assert [(entry["mediaType"], entry["digest"]) for entry in manifest["layers"][:2]] == [
        (OCI_LAYER_GZIP, sha(gzip.compress(one))),
        (OCI_LAYER_ZSTD, sha(zstd(two))),
    ]
    assert manifest["layers"][2]["mediaType"] == OCI_LAYER_GZIP
    assert manifest["layers"][2]["digest"] != sha(three)


async def test_gzip_cancelled_between_chunks_leaves_its_files_in_the_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled at a chunk of the gzipping: it stops there, and what it wrote stays in the
    layout, for the layout's owner (the export's temporary directory) to remove."""
    big = layer("x" * (3 * CHUNK))
    members, _ = docker_save([big])
    checks = 0
    scope = anyio.CancelScope()

    def check_cancelled() -> None:
        nonlocal checks
        checks += 1
        if checks == 2:  # the first chunk is written: cancel before the second
            anyio.from_thread.run_sync(scope.cancel)
        threads.check_cancelled()

    monkeypatch.setattr(_export, "check_cancelled", check_cancelled)
    layout = tmp_path / "layout"
    with scope:
        await gzip_unpacked(save_tar(members), layout)
    assert scope.cancelled_caught
    assert checks == 2
    assert [path.name for path in tmp_path.iterdir()] == ["layout"]
    partial = layout / "blobs" / "sha256" / ".gzipping"
    assert partial.is_file()
    assert blob_bytes(layout, sha(big)) == big  # not removed: its gzip is not whole
    assert not (layout / "index.json").exists()


class OciSave:
    """The members of a docker save as Docker 25+ writes it: an OCI layout (+ manifest.json)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def add(self, data: bytes, media_type: str, **extra: Any) -> dict[str, Any]:
        self.blobs[sha(data)] = data
        return {"mediaType": media_type, "digest": sha(data), "size": len(data), **extra}

    def image(self, layers: list[bytes], architecture: str, **extra: Any) -> dict[str, Any]:
        compressed = [gzip.compress(data) for data in layers]
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": self.add(image_config([sha(d) for d in layers], architecture), "c"),
            "layers": [self.add(data, OCI_LAYER_GZIP) for data in compressed],
        }
        return self.add(json.dumps(manifest).encode(), OCI_MANIFEST, **extra)

    def members(self, top: dict[str, Any], *, leave_out: frozenset[str] = frozenset()) -> Members:
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [top]}
        blobs: Members = [
            (f"blobs/sha256/{digest.removeprefix('sha256:')}", data)
            for digest, data in self.blobs.items()
            if digest not in leave_out
        ]
        return [*blobs, ("index.json", json.dumps(index).encode()), ("oci-layout", b"{}")]


def platform(architecture: str) -> dict[str, str]:
    return {"os": "linux", "architecture": architecture}


async def test_an_oci_layout_save_is_read_through_its_index(tmp_path: Path) -> None:
    """Docker 25+: the image is found through index.json, and its layers stay gzip."""
    save = OciSave()
    layers = [layer("one"), layer("two")]
    top = save.image(layers, "amd64")
    manifest, _ = await unpacked(save_tar(save.members(top)), tmp_path)
    assert manifest["config"]["digest"] == sha(image_config([sha(d) for d in layers]))
    assert [entry["mediaType"] for entry in manifest["layers"]] == [OCI_LAYER_GZIP] * 2


def multi_platform(save: OciSave, *architectures: str) -> dict[str, Any]:
    manifests = [
        save.image([layer(architecture)], architecture, platform=platform(architecture))
        for architecture in architectures
    ]
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    return save.add(json.dumps(index).encode(), OCI_INDEX)


@pytest.mark.parametrize(
    ("wanted", "required", "chosen"),
    [(PLATFORM, False, "amd64"), (Platform("linux", "arm64"), True, "arm64")],
)
async def test_a_multi_platform_index_gives_the_platform_wanted(
    tmp_path: Path, wanted: Platform, required: bool, chosen: str
) -> None:
    """The engine's platform by default, or the one the caller names."""
    save = OciSave()
    tar = save_tar(save.members(multi_platform(save, "amd64", "arm64")))
    layout = tmp_path / "layout"
    result = await unpack_save(
        "x:1",
        reader(tar),
        layout,
        platform=wanted if required else None,
        engine_platform=engine_platform,
    )
    (image,) = result.images
    assert image.platform == Platform("linux", chosen)
    config = json.loads(blob_bytes(layout, image.config.digest))
    assert config["architecture"] == chosen


async def test_platforms_whose_blobs_were_left_out_are_not_offered(tmp_path: Path) -> None:
    """A containerd store exports only the platforms it holds: the only one left is taken."""
    save = OciSave()
    top = multi_platform(save, "arm64", "s390x")
    s390x_layer = sha(gzip.compress(layer("s390x")))
    tar = save_tar(save.members(top, leave_out=frozenset({s390x_layer})))
    result = await unpack_save(
        "x:1", reader(tar), tmp_path / "layout", engine_platform=engine_platform
    )
    assert [image.platform for image in result.images] == [Platform("linux", "arm64")]


async def test_a_platform_the_save_does_not_hold_is_image_not_found(tmp_path: Path) -> None:
    """ImageNotFoundError names the platform asked for and those held."""
    save = OciSave()
    tar = save_tar(save.members(multi_platform(save, "amd64", "arm64")))
    with pytest.raises(ImageNotFoundError) as caught:
        await unpack_save(
            "x:1", reader(tar), tmp_path / "layout", platform=Platform("linux", "ppc64le"),
            engine_platform=engine_platform,
        )  # fmt: skip
    assert caught.value.platform == "linux/ppc64le"
    assert caught.value.available == ("linux/amd64", "linux/arm64")
    assert "linux/amd64, linux/arm64" in str(caught.value)


async def several(tar: bytes, tmp_path: Path, platforms: Any) -> tuple[dict[str, Any], Path]:
    """The index a multi-platform export names in its index.json, and the layout."""
    layout = tmp_path / "layout"
    result = await unpack_save(
        "x:1", reader(tar), layout, platforms=platforms, engine_platform=engine_platform
    )
    (top,) = json.loads((layout / "index.json").read_text())["manifests"]
    assert (top["mediaType"], top["digest"]) == (OCI_INDEX, result.manifest_digest)
    index = json.loads(blob_bytes(layout, result.manifest_digest))
    assert index["mediaType"] == OCI_INDEX
    assert len(index["manifests"]) == len(result.images)
    return index, layout


async def test_all_platforms_become_an_index_of_each_image_with_its_platform(
    tmp_path: Path,
) -> None:
    """platforms="all": an index naming a manifest per platform held, each with its platform
    and the config and layers of that platform's image."""
    save = OciSave()
    tar = save_tar(save.members(multi_platform(save, "amd64", "arm64")))
    index, layout = await several(tar, tmp_path, "all")
    platforms = [entry["platform"] for entry in index["manifests"]]
    assert platforms == [platform("amd64"), platform("arm64")]
    for entry in index["manifests"]:
        assert entry["mediaType"] == OCI_MANIFEST
        manifest_bytes = blob_bytes(layout, entry["digest"])
        assert (sha(manifest_bytes), len(manifest_bytes)) == (entry["digest"], entry["size"])
        manifest = json.loads(manifest_bytes)
        config = json.loads(blob_bytes(layout, manifest["config"]["digest"]))
        assert config["architecture"] == entry["platform"]["architecture"]
        for described in manifest["layers"]:
            assert sha(blob_bytes(layout, described["digest"])) == described["digest"]


async def test_platforms_named_are_taken_in_their_order_and_only_those(tmp_path: Path) -> None:
    save = OciSave()
    tar = save_tar(save.members(multi_platform(save, "amd64", "arm64", "s390x")))
    wanted = (Platform("linux", "s390x"), Platform("linux", "amd64"))
    index, _ = await several(tar, tmp_path, wanted)
    assert [entry["platform"] for entry in index["manifests"]] == [
        platform("s390x"),
        platform("amd64"),
    ]


async def test_all_platforms_of_a_save_of_one_image_is_an_index_of_one(tmp_path: Path) -> None:
    """An engine without a containerd store holds one platform: the index names it."""
    members, _ = docker_save([layer("one")])
    index, _ = await several(save_tar(members), tmp_path, "all")
    assert [entry["platform"] for entry in index["manifests"]] == [platform("amd64")]


async def test_a_platform_named_among_several_that_is_not_held_is_image_not_found(
    tmp_path: Path,
) -> None:
    save = OciSave()
    tar = save_tar(save.members(multi_platform(save, "amd64", "arm64")))
    with pytest.raises(ImageNotFoundError) as caught:
        await several(tar, tmp_path, (Platform("linux", "amd64"), Platform("linux", "riscv64")))
    assert caught.value.platform == "linux/riscv64"
    assert caught.value.available == ("linux/amd64", "linux/arm64")


async def test_all_platforms_of_a_save_without_a_complete_image_is_an_export_error(
    tmp_path: Path,
) -> None:
    save = OciSave()
    top = multi_platform(save, "arm64")
    missing = sha(gzip.compress(layer("arm64")))
    tar = save_tar(save.members(top, leave_out=frozenset({missing})))
    with pytest.raises(ExportError, match="no complete image"):
        await several(tar, tmp_path, "all")


async def test_every_platform_s_layers_are_checked_against_its_config(tmp_path: Path) -> None:
    """A layer of the platform not pushed by default is checked too."""
    save = OciSave()
    good = save.image([layer("amd64")], "amd64", platform=platform("amd64"))
    config = save.add(image_config([sha(layer("what the config says"))], "arm64"), "c")
    wrong = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": [save.add(gzip.compress(layer("arm64")), OCI_LAYER_GZIP)],
    }
    bad = save.add(json.dumps(wrong).encode(), OCI_MANIFEST, platform=platform("arm64"))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [good, bad]}
    tar = save_tar(save.members(save.add(json.dumps(index).encode(), OCI_INDEX)))
    with pytest.raises(ExportError, match="its config says"):
        await several(tar, tmp_path, "all")


@pytest.mark.parametrize(
    ("breakage", "problem"),
    [
        ("cut short", "ends in the middle"),
        ("no manifest", "no manifest.json"),
        ("two images", "exactly one image"),
        ("wrong diff_id", "its config says"),
        ("missing layer", "which the tar does not hold"),
        ("not a tar", "not a tar archive"),
    ],
)
async def test_broken_exports_are_errors(tmp_path: Path, breakage: str, problem: str) -> None:
    """Each is an ExportError saying what is wrong, never a silently wrong image."""
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
    with pytest.raises(ExportError) as caught:
        await unpack_save("x:1", reader(tar), tmp_path / "layout", engine_platform=engine_platform)
    assert problem in str(caught.value)
    assert "export of x:1 is not usable" in str(caught.value)
    assert caught.value.image == "x:1"


async def test_a_config_over_a_mebibyte_is_exported(tmp_path: Path) -> None:
    """A config of 2 MiB (a long label, say) is read whole, not refused or cut."""
    data = layer("one")
    config = json.loads(image_config([sha(data)]))
    config["config"] = {"Labels": {"big": "x" * (2 << 20)}}
    config_bytes = json.dumps(config).encode()
    config_name = sha(config_bytes).removeprefix("sha256:") + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": ["x:1"], "Layers": ["l.tar"]}])
    tar = save_tar(
        [("l.tar", data), (config_name, config_bytes), ("manifest.json", manifest.encode())]
    )
    result = await unpack_save(
        "x:1", reader(tar), tmp_path / "layout", engine_platform=engine_platform
    )
    assert result.images[0].config.digest == sha(config_bytes)


@pytest.mark.parametrize(
    ("member", "content", "problem"),
    [
        ("config", b"[1, 2]", "is not an object"),
        ("config", b'{"os": "linux", "rootfs": "layers"}', "no rootfs.diff_ids"),
        ("config", b'{"os": 7, "rootfs": {"diff_ids": []}}', "its os is not a string but the"),
        ("config", b'{"os": "linux", "variant": ["v8"]}', "its variant is not a string"),
        ("config", b'{"architecture": "' + b"a" * 129 + b'"}', "has 129 characters"),
        ("config", b'{"os": ' + b"[" * 990 + b"]" * 990 + b"}", "more than 64 deep"),
        ("config", b'{"os": "linux", "rootfs": {"diff_ids": [7]}}', "no rootfs.diff_ids"),
        ("manifest.json", b'{"Config": "c.json"}', "is not an array"),
        ("manifest.json", b'[{"Config": 7}]', "manifest.json is malformed"),
        ("manifest.json", b"[1, 2", "its manifest.json is not JSON"),
        ("manifest.json", b"[" * 990 + b"]" * 990, "more than 64 deep"),
        ("manifest.json", b'[{"Config": "%s", "Layers": [7]}]', "Layers is not an array"),
        ("manifest.json", b'[{"Config": "%s", "Layers": "l"}]', "Layers is not an array"),
        ("manifest.json", b'[{"Config": "%s", "Layers": [], "RepoTags": "x"}]', "RepoTags"),
        ("manifest.json", b'[{"Config": "%s", "Layers": [], "RepoTags": [1]}]', "RepoTags"),
        ("manifest.json", b"[" + b",".join([b"{}"] * 1025) + b"]", "more than 1024 images"),
    ],
)
async def test_json_of_the_wrong_shape_is_an_export_error(
    tmp_path: Path, member: str, content: bytes, problem: str
) -> None:
    """Documents of the wrong shape are an ExportError, never a KeyError or AttributeError."""
    members, config = docker_save([layer("one")])
    config_name = sha(config).removeprefix("sha256:") + ".json"
    content = content.replace(b"%s", config_name.encode())
    if member == "config":
        members = [(name, content if name == config_name else data) for name, data in members]
    else:
        members = [*members[:-1], ("manifest.json", content)]
    with pytest.raises(ExportError, match=problem):
        await unpack_save(
            "x:1", reader(save_tar(members)), tmp_path / "layout", engine_platform=engine_platform
        )


def zstd_bomb(size: int) -> bytes:
    """A few KiB of zstd that inflate to ``size`` zero bytes."""
    out = io.BytesIO()
    with zstandard.ZstdCompressor().stream_writer(out, closefd=False) as writer:
        zeros = bytes(1 << 20)
        for _ in range(size >> 20):
            writer.write(zeros)
    return out.getvalue()


async def test_a_layer_that_inflates_to_a_gigabyte_holds_neither_the_loop_nor_a_deadline(
    tmp_path: Path,
) -> None:
    """Inflating for the diff_id check runs on a thread, in steps that see cancellation:
    the event loop keeps ticking, and a deadline ends the unpacking at once."""
    bomb = zstd_bomb(1 << 30)
    assert len(bomb) < 256 << 10
    members, _ = docker_save([bomb], diff_ids=[sha(b"whatever")])
    gaps: list[float] = []

    async def tick() -> None:
        last = anyio.current_time()
        while True:
            await anyio.sleep(0.005)
            now = anyio.current_time()
            gaps.append(now - last)
            last = now

    started = anyio.current_time()
    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        with pytest.raises(TimeoutError), anyio.fail_after(0.5):
            await unpack_save(
                "x:1",
                reader(save_tar(members)),
                tmp_path / "layout",
                engine_platform=engine_platform,
            )
        tg.cancel_scope.cancel()
    assert anyio.current_time() - started < 1.5, "the deadline did not stop the inflating"
    assert max(gaps) < 0.1, f"the event loop was held for {max(gaps):.3f} s"


@pytest.mark.parametrize(
    ("layer_bytes", "problem"),
    [
        (b"\x1f\x8b" + b"junk" * 100, "is not valid gzip"),
        (gzip.compress(b"x" * 1000)[:-20], "is cut short"),
        (b"\x28\xb5\x2f\xfd" + b"junk" * 100, "is not valid zstd"),
    ],
)
async def test_a_corrupt_compressed_layer_is_an_error_saying_so(
    tmp_path: Path, layer_bytes: bytes, problem: str
) -> None:
    """Never a bare zlib.error, nor a layer pushed as it came."""
    members, _ = docker_save([layer_bytes], diff_ids=[sha(b"x" * 1000)])
    with pytest.raises(ExportError, match=problem):
        await unpack_save(
            "x:1", reader(save_tar(members)), tmp_path / "layout", engine_platform=engine_platform
        )


async def test_a_corrupt_layer_nothing_refers_to_is_no_error(tmp_path: Path) -> None:
    """Only what the image uses must be sound."""
    members, _ = docker_save([layer("one")])
    members.insert(0, ("unreferenced/layer.tar", b"\x1f\x8bjunk"))
    await unpacked(save_tar(members), tmp_path)


async def test_an_image_without_a_tag_has_null_repo_tags(tmp_path: Path) -> None:
    """Docker writes "RepoTags": null for an image saved by its id."""
    members, _ = docker_save([layer("one")])
    entries = json.loads(members[-1][1])
    entries[0]["RepoTags"] = None
    members[-1] = ("manifest.json", json.dumps(entries).encode())
    await unpacked(save_tar(members), tmp_path)


def many_entries_naming_one_config() -> bytes:
    """1,024 images in manifest.json, all of one 4 MiB config: read once, not 1,024 times."""
    data = layer("one")
    config = json.loads(image_config([sha(data)]))
    config["config"] = {"Labels": {"big": "x" * (4 << 20)}}
    entry = {"Config": "c.json", "RepoTags": ["x:1"], "Layers": ["l.tar"]}
    manifest = json.dumps([entry] * 1024).encode()
    return save_tar(
        [("l.tar", data), ("c.json", json.dumps(config).encode()), ("manifest.json", manifest)]
    )


def megabytes_of_manifest_json() -> bytes:
    """7.5 MB of manifest.json: parsing it whole held the event loop for 272 ms."""
    members, _ = docker_save([layer("one")])
    entries = json.loads(members[-1][1])
    entries[0]["RepoTags"] = [f"x:{n}" for n in range(640_000)]
    members[-1] = ("manifest.json", json.dumps(entries).encode())
    assert 7_500_000 < len(members[-1][1]) < MAX_DOCUMENT
    return save_tar(members)


def a_million_floats_for_an_os() -> bytes:
    """A config whose os is 1.5 million floats: str() of it held the loop for 441 ms."""
    members, config = docker_save([layer("one")])
    config_name = sha(config).removeprefix("sha256:") + ".json"
    big = b'{"os": [' + b",".join([b"1.5"] * 1_500_000) + b"]}"
    return save_tar([(name, big if name == config_name else data) for name, data in members])


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (many_entries_naming_one_config, "it holds 1024 images for linux/amd64"),
        (megabytes_of_manifest_json, "more than 65536 strings, commas and brackets"),
        (a_million_floats_for_an_os, "more than 65536 strings, commas and brackets"),
    ],
    ids=["1024-entries-one-config", "7.5-MB-manifest-json", "1.5M-floats-os"],
)
async def test_large_json_documents_hold_neither_the_loop_nor_a_deadline(
    tmp_path: Path, make: Callable[[], bytes], problem: str
) -> None:
    """Each is an ExportError saying what is wrong, well within a deadline, and the event
    loop keeps ticking: documents are parsed on a worker thread within bounds, each config
    once however many images name it."""
    tar = make()
    gaps: list[float] = []

    async def tick() -> None:
        last = anyio.current_time()
        while True:
            await anyio.sleep(0.005)
            now = anyio.current_time()
            gaps.append(now - last)
            last = now

    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        with pytest.raises(ExportError, match=problem), anyio.fail_after(2):
            await unpack_save(
                "x:1", reader(tar), tmp_path / "layout", engine_platform=engine_platform
            )
        tg.cancel_scope.cancel()
    assert max(gaps) < 0.1, f"the event loop was held for {max(gaps):.3f} s"


def pax_headers_in_a_row() -> bytes:
    """1,000 PAX headers of distinct keys before one member: they held 464 MiB."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for n in range(1000):
            records = b"".join(b"1014 k%06d=%s\n" % (4 * n + m, b"v" * 1000) for m in range(4))
            info = tarfile.TarInfo("././@PaxHeader")
            info.type, info.size = tarfile.XHDTYPE, len(records)
            tar.addfile(info, io.BytesIO(records))
        members, _ = docker_save([layer("one")])
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data) if isinstance(data, bytes) else 0
            tar.addfile(info, io.BytesIO(data if isinstance(data, bytes) else b""))
    return buffer.getvalue()


def a_config_whose_os_is_990_lists_deep() -> bytes:
    members, config = docker_save([layer("one")])
    config_name = sha(config).removeprefix("sha256:") + ".json"
    deep = b'{"os": ' + b"[" * 990 + b"]" * 990 + b"}"
    return save_tar([(name, deep if name == config_name else data) for name, data in members])


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (pax_headers_in_a_row, "more than 8 extended headers in a row"),
        (a_config_whose_os_is_990_lists_deep, "nests arrays and objects more than 64 deep"),
        (a_million_floats_for_an_os, "more than 65536 strings, commas and brackets"),
        (megabytes_of_manifest_json, "more than 65536 strings, commas and brackets"),
        (many_entries_naming_one_config, "it holds several images"),
    ],
    ids=["pax-headers-in-a-row", "990-deep-os", "1.5M-floats-os", "7.5-MB-manifest-json",
         "1024-entries-one-config"],
)  # fmt: skip
async def test_a_callers_tarball_of_these_is_an_invalid_source_error(
    tmp_path: Path, make: Callable[[], bytes], problem: str
) -> None:
    """The same reader checks a tarball given to push(), with either pusher: its problems are
    the caller's, an InvalidSourceError naming the file, within a deadline."""
    path = tmp_path / "image.tar"
    path.write_bytes(make())
    with pytest.raises(InvalidSourceError, match=problem) as caught, anyio.fail_after(2):
        await check_tarball(path, fail=functools.partial(InvalidSourceError, path))
    assert caught.value.argument == "source"
    assert caught.value.value == path
