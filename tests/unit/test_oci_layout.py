"""Reading an OCI layout made by somebody else: digests by the grammar, files contained."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from ephemeral_registry._oci.errors import FormatError
from ephemeral_registry._oci.layout import (
    MAX_DEPTH,
    MAX_LINKS,
    Descriptor,
    check_digest,
    open_blob,
    read_document,
    read_layout,
    read_layout_blocking,
)
from ephemeral_registry._oci.media_types import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
)


def put(layout: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def write_index(layout: Path, *entries: dict[str, object]) -> None:
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": entries}))


def image_config(
    layout: Path, layers: list[dict[str, object]], **fields: object
) -> dict[str, object]:
    """An image config whose diff_ids are the layers' digests (uncompressed layers)."""
    config = {
        "os": "linux",
        "architecture": "amd64",
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
        **fields,
    }
    return {"mediaType": OCI_CONFIG, **put(layout, json.dumps(config).encode())}


def manifest(
    layout: Path, *, config: dict[str, object] | None = None, **fields: object
) -> dict[str, object]:
    """A manifest of one layer (or ``layers=``), whose config matches them unless given."""
    layers = fields["layers"] if "layers" in fields else [put(layout, b"layer")]
    assert isinstance(layers, list)
    document: dict[str, object] = {
        "mediaType": OCI_MANIFEST,
        "config": config or image_config(layout, layers),
        "layers": layers,
    }
    document.update(fields)
    return {"mediaType": OCI_MANIFEST, **put(layout, json.dumps(document).encode())}


def test_a_layout_is_read_with_every_blob(tmp_path: Path) -> None:
    write_index(tmp_path, manifest(tmp_path))
    layout = read_layout_blocking(tmp_path)
    assert len(list(layout.manifests())) == 1
    assert len(layout.blobs()) == 2


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:/etc/passwd",
        "sha256:../../../../etc/passwd",
        "sha256:" + "A" * 64,
        "sha256:" + "a" * 63,
        "../sha256:" + "a" * 64,
        "md5:" + "a" * 32,
        "sha256",
        7,
        None,
    ],
)
def test_a_digest_off_the_grammar_names_no_file(digest: object) -> None:
    """Checked before it becomes a path: pathlib would drop all before an absolute part."""
    with pytest.raises(FormatError, match="digest"):
        check_digest(digest)


def test_a_layer_named_by_an_absolute_path_is_refused_before_anything_is_opened(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"key")
    layout = tmp_path / "layout"
    layers = [{"mediaType": "x", "digest": f"sha256:{secret}", "size": 3}]
    write_index(layout, manifest(layout, layers=layers))
    with pytest.raises(FormatError, match="digest"):
        read_layout_blocking(layout)


def test_a_blob_that_links_out_of_the_layout_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"layer")
    layout = tmp_path / "layout"
    write_index(layout, manifest(layout))
    blob = layout / "blobs" / "sha256" / hashlib.sha256(b"layer").hexdigest()
    blob.unlink()
    blob.symlink_to(outside)
    with pytest.raises(FormatError, match="link leads out of the layout"):
        read_layout_blocking(layout)


def test_a_link_inside_the_layout_is_followed(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    write_index(layout, manifest(layout))
    blob = layout / "blobs" / "sha256" / hashlib.sha256(b"layer").hexdigest()
    (layout / "kept").write_bytes(blob.read_bytes())
    blob.unlink()
    blob.symlink_to("../../kept")
    read_layout_blocking(layout)


def test_a_blob_of_another_size_than_its_descriptor_is_refused(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    write_index(layout, manifest(layout, layers=[{**put(layout, b"layer"), "size": 4}]))
    with pytest.raises(FormatError, match="has 5 bytes, its descriptor says 4"):
        read_layout_blocking(layout)


def test_open_blob_checks_again(tmp_path: Path) -> None:
    """The file opened is the one checked: a directory, or a missing file, is refused."""
    descriptor = Descriptor.of(put(tmp_path, b"abc"))
    with open_blob(tmp_path, descriptor) as file:
        assert file.read() == b"abc"
    os.unlink(tmp_path / "blobs" / "sha256" / descriptor.digest.partition(":")[2])
    with pytest.raises(FormatError, match="cannot be read"):
        open_blob(tmp_path, descriptor)


@pytest.mark.parametrize(
    "descriptor",
    [
        {"digest": "sha256:" + "a" * 64, "size": True},
        {"digest": "sha256:" + "a" * 64, "size": -1},
        {"digest": "sha256:" + "a" * 64, "size": "5"},
        {"digest": "sha256:" + "a" * 64, "size": 5, "mediaType": 3},
        [],
    ],
)
def test_descriptors_of_the_wrong_types_are_refused(descriptor: object) -> None:
    with pytest.raises(FormatError, match="descriptor"):
        Descriptor.of(descriptor)


def test_indexes_nest_a_bounded_depth(tmp_path: Path) -> None:
    entry = manifest(tmp_path)
    for _ in range(MAX_DEPTH + 1):
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}
        entry = {"mediaType": OCI_INDEX, **put(tmp_path, json.dumps(index).encode())}
    write_index(tmp_path, entry)
    with pytest.raises(FormatError, match="nest more than"):
        read_layout_blocking(tmp_path)


def test_repeated_entries_are_read_once(tmp_path: Path) -> None:
    """An index naming one manifest 1000 times: one manifest, not 1000 visits each level."""
    entry = manifest(tmp_path)
    for _ in range(3):
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry] * 1000}
        entry = {"mediaType": OCI_INDEX, **put(tmp_path, json.dumps(index).encode())}
    write_index(tmp_path, entry)
    assert len(list(read_layout_blocking(tmp_path).manifests())) == 1


@pytest.mark.parametrize(
    "index",
    [b"[]", b"null", b'"x"', b"{", b"[" * 100_000 + b"]" * 100_000, b'{"manifests": {}}'],
)
def test_an_index_json_of_the_wrong_shape_is_refused(tmp_path: Path, index: bytes) -> None:
    (tmp_path / "index.json").write_bytes(index)
    with pytest.raises(FormatError):
        read_layout_blocking(tmp_path)


def test_documents_come_each_once_and_after_what_they_name(tmp_path: Path) -> None:
    """The order a registry takes them in: a manifest before the index that names it."""
    one = manifest(tmp_path)
    two = manifest(tmp_path, layers=[put(tmp_path, b"other layer")])
    inner = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [one, two]}
    index = {"mediaType": OCI_INDEX, **put(tmp_path, json.dumps(inner).encode())}
    write_index(tmp_path, index, one)
    layout = read_layout_blocking(tmp_path)
    order = [document.descriptor.digest for document in layout.documents()]
    assert order == [one["digest"], two["digest"], index["digest"]]
    assert layout.content == (tmp_path / "index.json").read_bytes()


def outside_copy(tmp_path: Path, layout: Path, name: str) -> Path:
    """Move the layout's file ``name`` out of it, and leave a link to it in its place."""
    outside = tmp_path / f"outside-{name.replace('/', '-')}"
    (layout / name).rename(outside)
    return outside


@pytest.mark.parametrize("absolute", [True, False])
@pytest.mark.parametrize("name", ["index.json", "oci-layout", "blobs", "blob"])
def test_no_path_of_a_layout_resolves_outside_it(
    tmp_path: Path, name: str, *, absolute: bool
) -> None:
    """index.json, oci-layout, blobs/ and each blob: a link out is refused, absolute or not."""
    layout = tmp_path / "layout"
    write_index(layout, manifest(layout))
    if name == "blob":
        name = f"blobs/sha256/{hashlib.sha256(b'layer').hexdigest()}"
    outside = outside_copy(tmp_path, layout, name)
    depth = name.count("/")
    target = outside if absolute else Path(*[".."] * (depth + 1), outside.name)
    (layout / name).symlink_to(target)
    with pytest.raises(FormatError, match="link leads out of the layout"):
        read_layout_blocking(layout)


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    """Opened non-blocking, then found not to be a regular file."""
    layout = tmp_path / "layout"
    write_index(layout, manifest(layout))
    (layout / "oci-layout").unlink()
    os.mkfifo(layout / "oci-layout")
    with pytest.raises(FormatError, match="not a regular file"):
        read_layout_blocking(layout)


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_a_device_in_the_layout_is_refused_without_being_opened(tmp_path: Path) -> None:
    """A device node where a blob should be (a tar unpacked as root may make one): looked
    at, never opened, as a device's open may act."""
    layout = tmp_path / "layout"
    write_index(layout, manifest(layout))
    blob = layout / "blobs" / "sha256" / hashlib.sha256(b"layer").hexdigest()
    blob.unlink()
    os.mknod(blob, 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero's numbers
    opened: list[str] = []

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event == "open" and str(args[0]) == blob.name:
            opened.append(event)

    _HOOKS.append(hook)
    try:
        with pytest.raises(FormatError, match="not a regular file"):
            read_layout_blocking(layout)
    finally:
        _HOOKS.remove(hook)
    assert opened == []


_HOOKS: list[Callable[[str, tuple[object, ...]], None]] = []
sys.addaudithook(lambda event, args: [hook(event, args) for hook in list(_HOOKS)] and None)


def chained_layer(layout: Path, links: int) -> dict[str, object]:
    """A layer whose blob is reached through a chain of ``links`` links inside the layout."""
    descriptor = put(layout, b"layer")
    blob = layout / "blobs" / "sha256" / str(descriptor["digest"]).partition(":")[2]
    blob.rename(layout / "real")
    previous = "real"
    for number in range(links - 1):
        (layout / f"link{number}").symlink_to(previous)
        previous = f"link{number}"
    blob.symlink_to(f"../../{previous}")
    return descriptor


def test_a_chain_of_links_inside_is_followed_up_to_the_limit(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    write_index(layout, manifest(layout, layers=[chained_layer(layout, MAX_LINKS)]))
    read_layout_blocking(layout)
    other = tmp_path / "other"
    write_index(other, manifest(other, layers=[chained_layer(other, MAX_LINKS + 1)]))
    with pytest.raises(FormatError, match=f"more than {MAX_LINKS} links"):
        read_layout_blocking(other)


def test_a_layer_repeated_1000_times_through_30_links_is_read_once(tmp_path: Path) -> None:
    """Each distinct descriptor is resolved and hashed once, however often it repeats."""
    layer = chained_layer(tmp_path, 30)
    write_index(tmp_path, manifest(tmp_path, layers=[layer] * 1000))
    started = time.monotonic()
    layout = read_layout_blocking(tmp_path)
    assert time.monotonic() - started < 2
    assert len(layout.blobs()) == 2


@pytest.mark.anyio
async def test_reading_a_layout_sees_a_deadline(tmp_path: Path) -> None:
    """A layout of many distinct blobs: fail_after ends its reading at the next chunk."""
    layers = [put(tmp_path, bytes([number]) * (1 << 20)) for number in range(256)]
    write_index(tmp_path, manifest(tmp_path, layers=layers * 4))
    started = time.monotonic()
    await read_layout(tmp_path)
    whole = time.monotonic() - started
    started = time.monotonic()
    with pytest.raises(TimeoutError), anyio.fail_after(0.01):
        await read_layout(tmp_path)
    assert time.monotonic() - started < 0.01 + whole / 4


@pytest.mark.parametrize("which", ["manifest", "layer", "config"])
def test_bytes_that_do_not_match_their_digest_are_refused(tmp_path: Path, which: str) -> None:
    """Same size, other bytes: containerd's content store would refuse them too."""
    write_index(tmp_path, manifest(tmp_path))
    index = json.loads((tmp_path / "index.json").read_bytes())
    document = json.loads(read_blob(tmp_path, index["manifests"][0]))
    descriptor = {
        "manifest": index["manifests"][0],
        "layer": document["layers"][0],
        "config": document["config"],
    }[which]
    path = tmp_path / "blobs" / "sha256" / descriptor["digest"].partition(":")[2]
    content = bytearray(path.read_bytes())
    content[-2] ^= 1
    path.write_bytes(bytes(content))
    with pytest.raises(FormatError, match="do not match its digest"):
        read_layout_blocking(tmp_path)


def read_blob(layout: Path, descriptor: dict[str, str]) -> bytes:
    return (layout / "blobs" / "sha256" / descriptor["digest"].partition(":")[2]).read_bytes()


def test_a_config_that_is_not_json_is_refused(tmp_path: Path) -> None:
    config = {"mediaType": OCI_CONFIG, **put(tmp_path, b"not json")}
    write_index(tmp_path, manifest(tmp_path, config=config))
    with pytest.raises(FormatError, match="is not JSON"):
        read_layout_blocking(tmp_path)


def test_a_layer_whose_diff_id_does_not_match_is_refused(tmp_path: Path) -> None:
    layer = put(tmp_path, b"layer")
    config = image_config(tmp_path, [put(tmp_path, b"another layer")])
    write_index(tmp_path, manifest(tmp_path, config=config, layers=[layer]))
    with pytest.raises(FormatError, match="its config says"):
        read_layout_blocking(tmp_path)


def test_a_gzipped_layer_is_checked_by_its_content(tmp_path: Path) -> None:
    """The diff_id is the digest of the layer inflated, as for a tarball."""
    layer = {"mediaType": OCI_LAYER_GZIP, **put(tmp_path, gzip.compress(b"layer"))}
    config = image_config(tmp_path, [put(tmp_path, b"layer")])
    write_index(tmp_path, manifest(tmp_path, config=config, layers=[layer]))
    read_layout_blocking(tmp_path)


def test_a_sha512_blob_is_refused(tmp_path: Path) -> None:
    """Neither pusher pushes it: crane cannot, so the native pusher does not either."""
    data = b"layer"
    encoded = hashlib.sha512(data).hexdigest()
    (tmp_path / "blobs" / "sha512").mkdir(parents=True)
    (tmp_path / "blobs" / "sha512" / encoded).write_bytes(data)
    layer = {"mediaType": OCI_LAYER, "digest": f"sha512:{encoded}", "size": len(data)}
    write_index(tmp_path, manifest(tmp_path, layers=[layer]))
    with pytest.raises(FormatError, match="is sha512, not sha256"):
        read_layout_blocking(tmp_path)


@pytest.mark.parametrize("field", ["os", "architecture", "variant"])
def test_a_config_whose_platform_is_not_strings_is_refused(tmp_path: Path, field: str) -> None:
    """An os that is a list: crane refuses it, so both pushers do."""
    layers = [put(tmp_path, b"layer")]
    config = image_config(tmp_path, layers, **{field: ["linux"]})
    write_index(tmp_path, manifest(tmp_path, config=config, layers=layers))
    with pytest.raises(FormatError, match=f"its {field} is not a string"):
        read_layout_blocking(tmp_path)


def test_an_artifacts_blobs_are_only_hashed(tmp_path: Path) -> None:
    """A config of another media type is not an image's: no diff_ids are asked of it."""
    config = {"mediaType": "application/vnd.example.config+json", **put(tmp_path, b"{}")}
    layer = {"mediaType": "application/octet-stream", **put(tmp_path, b"anything")}
    write_index(tmp_path, manifest(tmp_path, config=config, layers=[layer]))
    read_layout_blocking(tmp_path)


def test_read_document_checks_the_bytes_again(tmp_path: Path) -> None:
    """What is pushed is read again and hashed: a change since the check is refused."""
    entry = manifest(tmp_path)
    descriptor = Descriptor.of(entry)
    assert read_document(tmp_path, descriptor) == read_blob(tmp_path, entry)  # type: ignore[arg-type]
    path = tmp_path / "blobs" / "sha256" / descriptor.digest.partition(":")[2]
    path.write_bytes(path.read_bytes().replace(b"layers", b"LAYERS"))
    with pytest.raises(FormatError, match="do not match its digest"):
        read_document(tmp_path, descriptor)
