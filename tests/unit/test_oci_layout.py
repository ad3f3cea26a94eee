"""Reading an OCI layout made by somebody else: digests by the grammar, files contained."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from ephemeral_registry._oci.errors import FormatError
from ephemeral_registry._oci.layout import (
    MAX_DEPTH,
    Descriptor,
    check_digest,
    open_blob,
    read_layout_blocking,
)
from ephemeral_registry._oci.media_types import OCI_INDEX, OCI_MANIFEST


def put(layout: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def write_index(layout: Path, *entries: dict[str, object]) -> None:
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": entries}))


def manifest(
    layout: Path, *, config: dict[str, object] | None = None, **layers: object
) -> dict[str, object]:
    config = config or put(layout, b'{"os":"linux","architecture":"amd64"}')
    document: dict[str, object] = {
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": [put(layout, b"layer")],
    }
    document.update(layers)
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
    with pytest.raises(FormatError, match="link out of the layout"):
        read_layout_blocking(layout)


def test_a_link_inside_the_layout_is_followed(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    write_index(layout, manifest(layout))
    blob = layout / "blobs" / "sha256" / hashlib.sha256(b"layer").hexdigest()
    (layout / "kept").write_bytes(blob.read_bytes())
    blob.unlink()
    blob.symlink_to(layout / "kept")
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
