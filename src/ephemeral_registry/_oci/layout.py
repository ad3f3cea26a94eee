"""Reading an OCI image layout directory that somebody else made, as hostile as a tarball.

Every path of it (``oci-layout``, ``index.json``, each blob) is opened as Go's
``os.Root`` opens one (``open_inside``): a component at a time, no link
followed by the system, so nothing outside the layout is reached whatever
its links (at most ``MAX_LINKS``) and whatever changes meanwhile. A
descriptor is checked before it names a file: its digest must follow the
OCI grammar and be ``sha256`` (the one algorithm both pushers can push:
crane's go-containerregistry knows no other), and its file must be a
regular file of the size the descriptor gives.

Every blob's bytes are checked as a tarball's are (``save``), as
containerd's content store checks what it ingests: streamed once, a chunk
at a time, hashed against its digest, and a layer's uncompressed content
(gzip and zstd inflated on the way) against the ``diff_ids`` of its image's
config, which must be JSON of the right shape (``content.read_config``). An
attestation's (``os`` "unknown") and an artifact's (a config of another
media type) blobs are only hashed. Each distinct descriptor is resolved and
read once however often it repeats, and the reading sees cancellation at
every descriptor and every chunk.

Indexes nest at most ``MAX_DEPTH`` deep, name at most ``MAX_MANIFESTS``
distinct manifests, and hold at most ``MAX_REFERENCES`` descriptors in all,
repeats included. JSON documents are read within the bounds of
``documents``; none is held past its parsing but ``index.json``, so memory
is one document at a time (``MAX_DOCUMENT``) plus the descriptors.

Every file operation runs on a worker thread.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import anyio.to_thread

from .content import Digests, read_config, sha256_of
from .documents import MAX_DOCUMENT, kind_of, parse_object
from .errors import FormatError
from .media_types import (
    DOCKER_IMAGE_CONFIG,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
)
from .stream import CHUNK
from .threads import check_cancelled

MAX_DEPTH = 8
"""How deep indexes may nest."""
MAX_MANIFESTS = 1024
"""How many distinct manifests and indexes a layout may lead to (and a ``docker save``: its
index.json, or the images its manifest.json lists)."""
MAX_REFERENCES = 1 << 16
"""How many descriptors its index.json, indexes and manifests may hold in all, repeats
included (the most strings a JSON document may hold, ``documents.MAX_TOKENS``)."""
MAX_LINKS = 40
"""How many links one path may go through (Linux's own limit)."""
IMAGE_CONFIGS = frozenset({OCI_CONFIG, DOCKER_IMAGE_CONFIG, ""})
"""The configs whose shape and diff_ids are checked: an image's, or one of no media type."""

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


def check_sha256(digest: str) -> str:
    """``digest`` if it is sha256: the one algorithm both pushers push (crane's
    go-containerregistry refuses any other), so the one a layout may use."""
    if not digest.startswith("sha256:"):
        raise FormatError(
            f"a descriptor's digest is {digest.partition(':')[0]}, not sha256: {digest[:100]!r}"
            " (crane cannot push it, so neither pusher does; re-digest its blobs as sha256)"
        )
    return digest


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
        return cls(media_type, check_sha256(check_digest(value.get("digest"))), size)


@dataclass(frozen=True)
class Manifest:
    """An image manifest the layout holds, checked: the blobs it names (its bytes are read
    again, and checked again, when pushed: ``read_document``)."""

    descriptor: Descriptor
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
        """Where its file is, for a message: opened only through ``open_blob``."""
        return self.root / blob_name(descriptor)


def _refuse(name: str, problem: str) -> FormatError:
    return FormatError(f"{name}: {problem}")


def _is_special(directory: int, name: str) -> bool:
    """Whether ``name`` in ``directory`` is a device, a FIFO or a socket, looked at
    without opening it: a device's open may act (a tape rewinds). The descriptor's
    fstat after the open still decides; this keeps such a file from being opened."""
    try:
        mode = os.stat(name, dir_fd=directory, follow_symlinks=False).st_mode
    except OSError:
        return False  # the open says what is wrong
    return stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def open_inside(root: Path, name: str) -> IO[bytes]:
    """Open the regular file ``name`` (a relative path) of the directory ``root``, as Go's
    ``os.Root`` opens a file: one component at a time, each opened relative to the one
    before without following a link, so that nothing outside ``root`` is reached whatever
    the links are, and whatever changes meanwhile (blocking: on a thread).

    A link is followed by reading it: a relative target is resolved from where the link
    is, an absolute one, or a ``..`` that climbs above ``root``, is refused; at most
    ``MAX_LINKS`` links in all. The file is opened non-blocking (a FIFO does not hang the
    open) and must be a regular file.

    Raises:
        FormatError: any of the above does not hold, or a component cannot be opened.
    """
    parts = deque(name.split("/"))
    flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        directories = [os.open(root, flags | os.O_DIRECTORY)]
    except OSError as exc:
        raise _refuse(str(root), f"cannot be opened: {exc.strerror}") from None
    links = 0
    try:
        while parts:
            part = parts.popleft()
            if part in ("", "."):
                continue
            if part == "..":
                if len(directories) == 1:
                    raise _refuse(name, "a link leads out of the layout")
                os.close(directories.pop())
                continue
            last = not any(each not in ("", ".") for each in parts)
            if last and _is_special(directories[-1], part):
                raise _refuse(name, "is not a regular file")
            try:
                fd = os.open(
                    part,
                    flags | (os.O_NONBLOCK if last else os.O_DIRECTORY),
                    dir_fd=directories[-1],
                )
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    raise _refuse(name, f"cannot be read: {exc.strerror}") from None
                # A link (O_NOFOLLOW refused it), else no directory where one should be.
                target = _link(directories[-1], part, name, exc)
            else:
                if last:
                    break
                directories.append(fd)
                continue
            links += 1
            if links > MAX_LINKS:
                raise _refuse(name, f"it is reached through more than {MAX_LINKS} links")
            parts.extendleft(reversed(target.split("/")))
        else:
            raise _refuse(name, "is not a file")
    finally:
        for directory in directories:
            os.close(directory)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise _refuse(name, "is not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _link(directory: int, part: str, name: str, error: OSError) -> str:
    """The target of the link ``part`` in ``directory``, if it is a link that stays inside."""
    try:
        target = os.readlink(part, dir_fd=directory)
    except OSError:
        raise _refuse(name, f"cannot be read: {error.strerror}") from None
    if target.startswith("/"):  # as os.Root: an absolute target is outside, whatever it names
        raise _refuse(name, "a link leads out of the layout (an absolute target)")
    return target


def blob_name(descriptor: Descriptor) -> str:
    """Where a layout keeps the blob of ``descriptor``, relative to its root."""
    algorithm, _, encoded = descriptor.digest.partition(":")
    return f"blobs/{algorithm}/{encoded}"


def open_blob(root: Path, descriptor: Descriptor) -> IO[bytes]:
    """Open the file of ``descriptor`` inside ``root`` (see ``open_inside``), of the size the
    descriptor gives (blocking: on a thread). Its bytes are the caller's to check."""
    opened = open_inside(root, blob_name(descriptor))
    size = os.fstat(opened.fileno()).st_size
    if size != descriptor.size:
        opened.close()
        raise FormatError(
            f"the blob {descriptor.digest} has {size} bytes, its descriptor says {descriptor.size}"
        )
    return opened


def read_document(root: Path, descriptor: Descriptor) -> bytes:
    """The bytes of a JSON document of the layout (a manifest, an index, a config), of at
    most ``MAX_DOCUMENT`` bytes, checked against its digest (blocking: on a thread).

    Raises:
        FormatError: it is larger, cannot be read, or its bytes are not those its digest
            names (changed, or never were).
    """
    if descriptor.size > MAX_DOCUMENT:
        raise FormatError(
            f"the document {descriptor.digest} has {descriptor.size} bytes (at most"
            f" {MAX_DOCUMENT} are read)"
        )
    with open_blob(root, descriptor) as file:
        content = file.read(descriptor.size + 1)
    if len(content) != descriptor.size or sha256_of(content) != descriptor.digest:
        raise FormatError(f"the bytes of {descriptor.digest} do not match its digest")
    return content


def _hashed(root: Path, descriptor: Descriptor) -> str:
    """Stream the blob of ``descriptor``, hash it, check its digest; return the digest of its
    uncompressed content (its diff_id). Sees cancellation at every chunk."""
    digests = Digests()
    with open_blob(root, descriptor) as file:
        read = 0
        while chunk := file.read(min(CHUNK, descriptor.size - read)):
            check_cancelled()
            read += len(chunk)
            digests.update(chunk)
    blob = digests.blob(read)
    if read != descriptor.size or blob.digest != descriptor.digest:
        raise FormatError(f"the bytes of {descriptor.digest} do not match its digest")
    if blob.problem is not None:
        return f"{descriptor.digest} {blob.problem}"  # not a diff_id: refused if one is asked
    return blob.diff_id


def _list(document: dict[str, Any], key: str, what: str) -> list[Any]:
    value = document.get(key, [])
    if not isinstance(value, list):
        raise FormatError(f"the {key} of {what} is not an array")
    return value


def _read_small(root: Path, name: str) -> bytes:
    with open_inside(root, name) as file:
        content = file.read(MAX_DOCUMENT + 1)
    if len(content) > MAX_DOCUMENT:
        raise FormatError(f"its {name} is over {MAX_DOCUMENT} bytes")
    return content


def read_layout_blocking(path: Path) -> Layout:
    """Read and check an OCI layout (blocking); see ``read_layout``."""
    root = path.resolve()
    parse_object(_read_small(root, "oci-layout"), "its oci-layout")
    index_content = _read_small(root, "index.json")
    index = parse_object(index_content, "its index.json")
    seen: dict[str, Manifest | Index] = {}
    diff_ids: dict[str, str] = {}
    """The diff_id of each blob hashed, by digest: each is read once."""
    configs: dict[str, tuple[str, tuple[str, ...] | None]] = {}
    """The os and diff_ids of each config read, by digest: each is read once, however
    many manifests share it."""
    references = 0

    def blob(descriptor: Descriptor) -> str:
        check_cancelled()
        if descriptor.digest not in diff_ids:
            diff_ids[descriptor.digest] = _hashed(root, descriptor)
        return diff_ids[descriptor.digest]

    def check_image(what: str, config: Descriptor, layers: tuple[Descriptor, ...]) -> None:
        """A config that is JSON of the right shape, and layers of its diff_ids, as a
        tarball's are checked (``save``); an attestation's (``os`` "unknown") and an
        artifact's (a config of another media type) blobs are only hashed."""
        for layer in layers:
            blob(layer)
        if config.media_type not in IMAGE_CONFIGS:
            blob(config)
            return
        if config.digest not in configs:
            parsed = read_config(read_document(root, config), f"the config {config.digest}")
            configs[config.digest] = (parsed.platform.os, parsed.diff_ids)
        os_name, config_diff_ids = configs[config.digest]
        if os_name == "unknown":
            return
        if config_diff_ids is None:
            raise FormatError(f"{what}: its config names no rootfs.diff_ids (an array of strings)")
        if len(layers) != len(config_diff_ids):
            raise FormatError(
                f"{what}: {len(layers)} layers, but its config names {len(config_diff_ids)}"
            )
        for layer, diff_id in zip(layers, config_diff_ids, strict=True):
            found = blob(layer)
            if found != diff_id:
                raise FormatError(
                    f"{what}: a layer's content has the digest {found}, its config says {diff_id}"
                )

    def entry(value: object, depth: int) -> Manifest | Index:
        nonlocal references
        check_cancelled()
        references += 1
        if references > MAX_REFERENCES:
            raise FormatError(f"it holds more than {MAX_REFERENCES} descriptors")
        descriptor = Descriptor.of(value)
        if descriptor.digest in seen:
            return seen[descriptor.digest]
        if len(seen) >= MAX_MANIFESTS:
            raise FormatError(f"it leads to more than {MAX_MANIFESTS} manifests")
        content = read_document(root, descriptor)
        document = parse_object(content, descriptor.digest)
        del content  # held no longer than its parsing: a layout may lead to 1,024 of 8 MiB
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
            del document
            children = tuple(entry(child, depth + 1) for child in named)
            found = Index(descriptor, media_type or OCI_INDEX, children)
        elif media_type in (OCI_MANIFEST, DOCKER_MANIFEST) or not media_type:
            if "config" not in document:
                raise FormatError(f"{what} names no config")
            config = Descriptor.of(document["config"])
            named = _list(document, "layers", what)
            references += 1 + len(named)
            if references > MAX_REFERENCES:
                raise FormatError(f"it holds more than {MAX_REFERENCES} descriptors")
            layers = tuple(Descriptor.of(layer) for layer in named)
            del document, named
            check_image(what, config, layers)
            found = Manifest(descriptor, media_type or OCI_MANIFEST, config, layers)
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
