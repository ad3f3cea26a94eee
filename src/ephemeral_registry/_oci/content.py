"""What a blob holds: its digests as it streams (and, compressed, its content's), and what
this library reads of an image config. Shared by the readers of saves and of layouts, and
the one read-and-hash of a blob from a stream (``read_blob``)."""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from typing import IO, Any, Literal, TypeGuard, cast

import anyio.to_thread
import zstandard

from .._platform import Platform
from .documents import parse_object
from .errors import FormatError
from .stream import ReadExactly, Take, each_chunk
from .threads import check_cancelled

Compression = Literal["none", "gzip", "zstd"]

INFLATE_CHUNK = 1 << 20
"""The most bytes one step of the diff_id check decompresses at once."""
MAGIC: dict[bytes, Compression] = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd"}


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int
    compression: Compression
    diff_id: str
    """The digest of the uncompressed content (the blob's own digest when uncompressed)."""
    problem: str | None = None
    """Why its content could not be decompressed (corrupt gzip or zstd), if it could not."""


@dataclass(frozen=True)
class Config:
    """What this library reads of an image config, typed."""

    platform: Platform
    diff_ids: tuple[str, ...] | None
    """The digests of its layers' uncompressed content; None where it names no array of
    strings (an error only for an image that is pushed)."""


def read_config(content: bytes, what: str) -> Config:
    """An image config's platform and diff_ids (blocking: on a worker thread).

    Raises:
        FormatError: it is not a JSON object within ``_oci.documents``' bounds, or its
            os, architecture or variant is not a short string.
    """
    document = parse_object(content, what)
    try:
        platform = Platform.of(document)
    except FormatError as exc:
        raise FormatError(f"{what}: {exc}") from None
    rootfs = document.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    return Config(platform, tuple(diff_ids) if strings(diff_ids) else None)


class Digests:
    """The digest of a blob and of its uncompressed content, fed a chunk at a time.

    ``feed`` hashes (and inflates) on a worker thread, a step of at most
    ``INFLATE_CHUNK`` decompressed bytes at a time, and stops at the next step
    when the task waiting on it is cancelled: a small member that inflates
    to gigabytes does not hold the event loop, nor a deadline. Content that
    starts as gzip or zstd but is not valid is not an error here: the blob
    carries the ``problem``, which matters only if the image uses it.
    """

    def __init__(self) -> None:
        self._raw = hashlib.sha256()
        self._plain = hashlib.sha256()
        self.compression: Compression | None = None
        self._inflate: Any = None  # zlib's decompressor, or zstandard's stream writer
        self.problem: str | None = None

    async def feed(self, chunk: bytes) -> None:
        await anyio.to_thread.run_sync(self.update, chunk)

    def update(self, chunk: bytes) -> None:
        self._raw.update(chunk)
        if self.compression is None:
            self._start(chunk)
        if self.problem is not None:
            return
        try:
            if self.compression == "gzip":
                self._gunzip(chunk)
            elif self.compression == "zstd":
                self._inflate.write(chunk)
        except (zlib.error, zstandard.ZstdError) as exc:
            self.problem = f"is not valid {self.compression} ({exc})"

    def _start(self, first: bytes) -> None:
        self.compression = compression_of(first)
        if self.compression == "gzip":
            self._inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif self.compression == "zstd":
            sink = cast(IO[bytes], _HashWriter(self._plain))
            self._inflate = zstandard.ZstdDecompressor().stream_writer(
                sink, write_size=INFLATE_CHUNK
            )

    def _gunzip(self, data: bytes) -> None:
        while data:
            check_cancelled()
            self._plain.update(self._inflate.decompress(data, INFLATE_CHUNK))
            data = self._inflate.unconsumed_tail
            if self._inflate.eof and self._inflate.unused_data:  # another gzip member
                data = self._inflate.unused_data
                self._inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)

    def blob(self, size: int) -> Blob:
        if self.compression == "zstd" and self.problem is None:
            try:
                self._inflate.flush()
            except zstandard.ZstdError as exc:
                self.problem = f"is not valid zstd ({exc})"
        if self.compression == "gzip" and self.problem is None and not self._inflate.eof:
            self.problem = "is cut short: its gzip stream does not end"
        raw = f"sha256:{self._raw.hexdigest()}"
        compression = self.compression or "none"
        plain = raw if compression == "none" else f"sha256:{self._plain.hexdigest()}"
        return Blob(raw, size, compression, plain, self.problem)


async def read_blob(
    read_exactly: ReadExactly, size: int, take: Take | None = None, *, first: bytes = b""
) -> Blob:
    """Read a blob of ``size`` bytes from a stream, ``first`` of them read already, hashing
    it as it comes (``Digests``) and handing each chunk to ``take`` once hashed.

    Cancellation: stops at the next chunk.
    """
    digests = Digests()

    async def hashed(chunk: bytes) -> None:
        await digests.feed(chunk)
        if take is not None:
            await take(chunk)

    if first:
        await hashed(first)
    await each_chunk(read_exactly, size - len(first), hashed)
    return digests.blob(size)


def compression_of(first: bytes) -> Compression:
    """A blob's compression, told by its first bytes."""
    return next((kind for magic, kind in MAGIC.items() if first.startswith(magic)), "none")


def sha256_of(content: bytes) -> str:
    """The sha256 digest of ``content``, as a descriptor names it."""
    return f"sha256:{hashlib.sha256(content).hexdigest()}"


class _HashWriter:
    """A file-like sink that only hashes what is written to it, a step at a time."""

    def __init__(self, digest: Any) -> None:
        self._digest = digest

    def write(self, data: bytes) -> int:
        check_cancelled()
        self._digest.update(data)
        return len(data)


def strings(value: object) -> TypeGuard[list[str]]:
    """Whether ``value`` is a JSON array of strings."""
    return isinstance(value, list) and all(isinstance(each, str) for each in value)
