"""Reading an OCI image layout directory that somebody else made.

A layout names its files by the digests in its descriptors, so a
descriptor is checked before it names a file: its digest must follow the
OCI grammar (``algorithm:encoded``, a registered algorithm with its hex
length), and its file must lie inside the layout once links are resolved,
be a regular file, and have the size the descriptor gives. ``"sha256:/etc/x"``
or ``"sha256:../../x"`` name nothing. Indexes nest at most ``MAX_DEPTH``
deep and name at most ``MAX_MANIFESTS`` distinct manifests; an entry that
repeats is read once. JSON documents are read within the bounds of
``documents`` (``MAX_DOCUMENT`` bytes, how deep they nest, how much they hold).

Every file operation runs on a worker thread.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread

from .documents import MAX_DOCUMENT, kind_of, parse_object
from .errors import FormatError
from .media_types import DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST
from .threads import check_cancelled

MAX_DEPTH = 8
"""How deep indexes may nest."""
MAX_MANIFESTS = 1024
"""How many distinct manifests and indexes a layout may lead to."""

_ALGORITHM = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*")
_ENCODED = {"sha256": re.compile(r"[a-f0-9]{64}"), "sha512": re.compile(r"[a-f0-9]{128}")}


def check_digest(value: object) -> str:
    """``value`` if it is a digest by the OCI grammar, of an algorithm this library knows."""
    if not isinstance(value, str):
        raise FormatError(f"a descriptor's digest is not a string but {kind_of(value)}")
    algorithm, colon, encoded = value.partition(":")
    if not colon or not _ALGORITHM.fullmatch(algorithm):
        raise FormatError(f"a descriptor's digest is not algorithm:encoded: {value[:100]!r}")
    pattern = _ENCODED.get(algorithm)
    if pattern is None:
        raise FormatError(f"a descriptor's digest has an unknown algorithm: {value[:100]!r}")
    if not pattern.fullmatch(encoded):
        raise FormatError(f"a descriptor's digest is not a {algorithm} digest: {value[:100]!r}")
    return value


@dataclass(frozen=True)
class Descriptor:
    """A descriptor, checked: a media type, a digest by the grammar, a size."""

    media_type: str
    digest: str
    size: int

    @classmethod
    def of(cls, value: object) -> Descriptor:
        if not isinstance(value, dict):
            raise FormatError(f"a descriptor is not a JSON object but {kind_of(value)}")
        size = value.get("size")
        if type(size) is not int or size < 0:  # not bool, which is an int subclass
            raise FormatError(
                f"a descriptor's size is not a non-negative integer but {kind_of(size)}"
            )
        media_type = value.get("mediaType", "")
        if not isinstance(media_type, str):
            raise FormatError(f"a descriptor's mediaType is not a string but {kind_of(media_type)}")
        return cls(media_type, check_digest(value.get("digest")), size)


@dataclass(frozen=True)
class Manifest:
    """An image manifest the layout holds: its bytes and the blobs it names."""

    descriptor: Descriptor
    content: bytes
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        return (self.config, *self.layers)


@dataclass(frozen=True)
class Index:
    """An index (an image index, or Docker's manifest list) the layout holds."""

    descriptor: Descriptor
    content: bytes
    media_type: str
    entries: tuple[Manifest | Index, ...]


@dataclass(frozen=True)
class Layout:
    """What an OCI layout's ``index.json`` leads to, every file checked."""

    root: Path
    """Absolute, links resolved."""
    entries: tuple[Manifest | Index, ...]
    content: bytes
    """Its ``index.json`` as read: itself an image index."""

    def manifests(self) -> Iterator[Manifest]:
        """Every image manifest, once each, in the order of ``documents()``."""
        return (entry for entry in self.documents() if isinstance(entry, Manifest))

    def documents(self) -> Iterator[Manifest | Index]:
        """Every manifest and index, once each, an index after what it names: the order a
        registry takes them in."""
        seen: set[str] = set()

        def walk(entries: tuple[Manifest | Index, ...]) -> Iterator[Manifest | Index]:
            for entry in entries:
                if entry.descriptor.digest in seen:
                    continue
                seen.add(entry.descriptor.digest)
                if isinstance(entry, Index):
                    yield from walk(entry.entries)
                yield entry

        return walk(self.entries)

    def blobs(self) -> dict[str, Descriptor]:
        """Every config and layer of every manifest, once each, by digest."""
        return {blob.digest: blob for manifest in self.manifests() for blob in manifest.blobs}

    def blob_path(self, descriptor: Descriptor) -> Path:
        algorithm, _, encoded = descriptor.digest.partition(":")
        return self.root / "blobs" / algorithm / encoded


def _contained(root: Path, descriptor: Descriptor) -> Path:
    """The file of ``descriptor`` inside ``root``: links resolved, a regular file, its size."""
    algorithm, _, encoded = descriptor.digest.partition(":")
    path = (root / "blobs" / algorithm / encoded).resolve()
    if not path.is_relative_to(root):
        raise FormatError(f"the blob {descriptor.digest} is a link out of the layout")
    try:
        info = path.stat()
    except OSError as exc:
        raise FormatError(f"the blob {descriptor.digest} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise FormatError(f"the blob {descriptor.digest} is not a regular file")
    if info.st_size != descriptor.size:
        raise FormatError(
            f"the blob {descriptor.digest} has {info.st_size} bytes, its descriptor says"
            f" {descriptor.size}"
        )
    return path


def open_blob(root: Path, descriptor: Descriptor) -> Any:
    """Open the file of ``descriptor``, checked as ``_contained`` does (blocking: on a thread).

    The file opened is the one checked: it is opened without following a
    link, and must be the same inode as the path checked.
    """
    path = _contained(root, descriptor)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise FormatError(f"the blob {descriptor.digest} cannot be read: {exc.strerror}") from None
    opened = os.fdopen(fd, "rb")
    info, checked = os.fstat(fd), path.stat()
    identity = (checked.st_dev, checked.st_ino, checked.st_size)
    if (info.st_dev, info.st_ino, info.st_size) != identity:
        opened.close()
        raise FormatError(f"the blob {descriptor.digest} changed while it was opened")
    return opened


def _document(root: Path, descriptor: Descriptor) -> tuple[bytes, dict[str, Any]]:
    if descriptor.size > MAX_DOCUMENT:
        raise FormatError(
            f"the document {descriptor.digest} has {descriptor.size} bytes (at most"
            f" {MAX_DOCUMENT} are read)"
        )
    with open_blob(root, descriptor) as file:
        content = file.read(MAX_DOCUMENT + 1)
    return content, parse_object(content, descriptor.digest)


def _list(document: dict[str, Any], key: str, what: str) -> list[Any]:
    value = document.get(key, [])
    if not isinstance(value, list):
        raise FormatError(f"the {key} of {what} is not an array")
    return value


def read_layout_blocking(path: Path) -> Layout:
    """Read and check an OCI layout (blocking); see ``read_layout``."""
    root = path.resolve()
    index_path = root / "index.json"
    try:
        if index_path.stat().st_size > MAX_DOCUMENT:
            raise FormatError(f"its index.json is over {MAX_DOCUMENT} bytes")
        with index_path.open("rb") as file:
            index_content = file.read(MAX_DOCUMENT + 1)
        index = parse_object(index_content, "its index.json")
    except OSError as exc:
        raise FormatError(f"its index.json cannot be read: {exc.strerror}") from None
    seen: dict[str, Manifest | Index] = {}

    def entry(value: object, depth: int) -> Manifest | Index:
        check_cancelled()
        descriptor = Descriptor.of(value)
        if descriptor.digest in seen:
            return seen[descriptor.digest]
        if len(seen) >= MAX_MANIFESTS:
            raise FormatError(f"it leads to more than {MAX_MANIFESTS} manifests")
        content, document = _document(root, descriptor)
        media_type = descriptor.media_type or document.get("mediaType") or ""
        if not isinstance(media_type, str):
            raise FormatError(f"the mediaType of {descriptor.digest} is not a string")
        what = f"the manifest {descriptor.digest}"
        found: Manifest | Index
        if media_type in (OCI_INDEX, DOCKER_MANIFEST_LIST) or (
            not media_type and "manifests" in document
        ):
            if depth >= MAX_DEPTH:
                raise FormatError(f"its indexes nest more than {MAX_DEPTH} deep")
            named = _list(document, "manifests", what)
            children = tuple(entry(child, depth + 1) for child in named)
            found = Index(descriptor, content, media_type or OCI_INDEX, children)
        elif media_type in (OCI_MANIFEST, DOCKER_MANIFEST) or not media_type:
            if "config" not in document:
                raise FormatError(f"{what} names no config")
            config = Descriptor.of(document["config"])
            layers = tuple(Descriptor.of(layer) for layer in _list(document, "layers", what))
            for blob in (config, *layers):
                _contained(root, blob)
            found = Manifest(descriptor, content, media_type or OCI_MANIFEST, config, layers)
        else:
            raise FormatError(f"{what} is of an unknown media type {media_type[:80]!r}")
        seen[descriptor.digest] = found
        return found

    entries = tuple(entry(value, 0) for value in _list(index, "manifests", "its index.json"))
    return Layout(root, entries, index_content)


async def read_layout(path: Path) -> Layout:
    """Read and check the OCI layout at ``path``: every descriptor it leads to, every file
    they name (inside the layout, regular, of the size given). Runs on a worker thread.

    Raises:
        FormatError: anything of the above does not hold.

    Cancellation: the thread stops at the next document, and the
    cancellation propagates; nothing is left open.
    """
    return await anyio.to_thread.run_sync(read_layout_blocking, path)
