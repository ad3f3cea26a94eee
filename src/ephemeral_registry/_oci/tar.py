"""The one tar reader: every tar this library reads (a ``docker save`` stream or file).

Python's ``tarfile`` trusts its input: a PAX record of length 0 makes it
loop forever, and a negative size or a PAX key that is not UTF-8 ends in a
bare ``ValueError`` or ``UnicodeDecodeError``. This reader follows Go's
``archive/tar`` instead, which refuses such headers:

- a header's checksum must match (the unsigned or the signed sum);
- numbers are octal or base-256, and a size must not be negative;
- PAX records are ``"<length> <key>=<value>\\n"`` with a length that covers
  the whole record, a UTF-8 key without NUL, and a ``size`` of decimal digits;
- PAX headers and GNU long names are at most ``MAX_SPECIAL`` bytes each;
  what comes before one member (``MAX_EXTENDED_HEADERS`` of them at most,
  ``MAX_EXTENDED`` bytes and ``MAX_PAX_RECORDS`` records in all) and what
  the whole archive holds (``MAX_ARCHIVE_EXTENDED`` bytes and
  ``MAX_ARCHIVE_PAX_RECORDS`` records) are bounded too, global headers
  included: consecutive headers would otherwise pile up records without end;
- header-only types (links, directories, devices, FIFOs) carry no data,
  whatever their size field says.

Anything else is a ``FormatError``. Memory is bounded (the extended headers
of one member); time is linear in the input; the reader returns to the event
loop at every header and every chunk it skips, so deadlines and
cancellation work whatever the stream holds.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Literal

import anyio.lowlevel

from .errors import FormatError
from .stream import ReadExactly, each_chunk

BLOCK = 512
MAX_SPECIAL = 1 << 16
"""The largest PAX header or GNU long name accepted (a path is at most a few KiB)."""
MAX_EXTENDED_HEADERS = 8
"""The most extended headers (PAX, global PAX, GNU long name and link) before one member:
a writer puts at most one of each kind."""
MAX_EXTENDED = 1 << 17
"""The most bytes of extended headers before one member, in all: a path and a link target
of ``MAX_SPECIAL`` bytes each."""
MAX_PAX_RECORDS = 256
"""The most PAX records before one member (Go and GNU tar write a few, tarfile fewer)."""
MAX_ARCHIVE_EXTENDED = 64 << 20
"""The most bytes of extended headers in a whole archive: a PAX header for each of 100,000
members (GNU tar's ``--format=posix`` writes about 100 bytes each) is a sixth of it."""
MAX_ARCHIVE_PAX_RECORDS = 1 << 19
"""The most PAX records in a whole archive (GNU tar's posix format writes about three a
member). A record costs a Python step, where data costs one per MiB: this bounds the time
spent parsing them to about a second."""
MAX_SIZE = (1 << 63) - 1

Kind = Literal["file", "symlink", "hardlink", "other"]

_HEADER_ONLY = frozenset(b"12345")  # hard link, symlink, char, block, directory; FIFO below
_FIFO = ord("6")
_REGULAR = frozenset(b"07\0")
_PAX_LOCAL = frozenset(b"xX")  # X: Solaris' spelling
_PAX_GLOBAL = ord("g")
_LONG_NAME, _LONG_LINK = ord("L"), ord("K")
_DECIMAL = re.compile(rb"[0-9]{1,19}")
_NUL_BLOCK = bytes(BLOCK)


@dataclass(frozen=True)
class Member:
    """One member of the archive, as its headers (PAX and GNU included) describe it."""

    name: str
    """Normalised (``posixpath.normpath``); undecodable bytes kept as surrogates."""
    kind: Kind
    size: int
    """The bytes of data that follow the header (0 for header-only types)."""
    link: str
    """A link's target as written; empty for other kinds."""


@dataclass
class _Extended:
    """What the extended headers before one member took so far."""

    headers: int = 0
    size: int = 0
    records: int = 0


@dataclass
class _Header:
    name: bytes
    typeflag: int
    size: int
    link: bytes


class TarReader:
    """Reads a tar stream member by member.

    ``members()`` yields each member; while it is the current one, ``read``
    takes bytes of its data (at most what is left of it). Whatever the
    consumer leaves unread is skipped before the next header.

    Raises ``FormatError`` for any input that is not a tar archive of the
    kinds above, including one that ends before its end-of-archive marker.
    """

    def __init__(self, read_exactly: ReadExactly) -> None:
        self._read_exactly = read_exactly
        self._left = 0  # of the current member's data
        self._padding = 0  # after it
        self._extended_bytes = 0  # of the whole archive's extended headers
        self._records = 0  # of its PAX records

    async def _read(self, size: int) -> bytes:
        try:
            data = await self._read_exactly(size)
        except EOFError:
            raise FormatError("the tar archive ends in the middle of a member") from None
        if len(data) != size:
            raise FormatError("the tar archive ends in the middle of a member")
        return data

    async def read(self, size: int) -> bytes:
        """``size`` bytes of the current member's data."""
        if size > self._left:
            raise FormatError("read past the end of a member")  # a bug of the caller's
        data = await self._read(size)
        self._left -= size
        return data

    async def _skip(self, size: int) -> None:
        await each_chunk(self._read, size)

    async def _special(self, header: _Header, before: _Extended) -> bytes:
        """The data of a PAX header or GNU long name, which is read whole (bounded, as are
        those before one member and those of the whole archive)."""
        if header.size > MAX_SPECIAL:
            raise FormatError(
                f"an extended header of {header.size} bytes (at most {MAX_SPECIAL} are read)"
            )
        before.headers += 1
        before.size += header.size
        self._extended_bytes += header.size
        if before.headers > MAX_EXTENDED_HEADERS:
            raise FormatError(
                f"more than {MAX_EXTENDED_HEADERS} extended headers in a row, before one member"
            )
        if before.size > MAX_EXTENDED:
            raise FormatError(
                f"the extended headers before one member take more than {MAX_EXTENDED} bytes"
            )
        if self._extended_bytes > MAX_ARCHIVE_EXTENDED:
            raise FormatError(f"its extended headers take more than {MAX_ARCHIVE_EXTENDED} bytes")
        return (await self._read(_padded(header.size)))[: header.size]

    def _count(self, before: _Extended) -> None:
        """One more PAX record: refused beyond what one member, or the archive, may have."""
        before.records += 1
        self._records += 1
        if before.records > MAX_PAX_RECORDS:
            raise FormatError(f"more than {MAX_PAX_RECORDS} PAX records before one member")
        if self._records > MAX_ARCHIVE_PAX_RECORDS:
            raise FormatError(f"it holds more than {MAX_ARCHIVE_PAX_RECORDS} PAX records")

    async def members(self) -> AsyncIterator[Member]:
        """Each member in turn, until the end-of-archive marker."""
        pax: dict[str, str] = {}
        long_name: bytes | None = None
        long_link: bytes | None = None
        before = _Extended()
        while True:
            await self._skip(self._left + self._padding)
            self._left = self._padding = 0
            await anyio.lowlevel.checkpoint()
            block = await self._read(BLOCK)
            if block == _NUL_BLOCK:
                return  # the end-of-archive marker (a second one may follow; it is not read)
            header = parse_header(block)
            if header.typeflag in _PAX_LOCAL or header.typeflag == _PAX_GLOBAL:
                for key, value in parse_pax(await self._special(header, before)):
                    self._count(before)
                    if header.typeflag != _PAX_GLOBAL:  # a global one is checked, not used
                        pax[key] = value
                continue
            if header.typeflag in (_LONG_NAME, _LONG_LINK):
                text = (await self._special(header, before)).partition(b"\0")[0]
                if header.typeflag == _LONG_NAME:
                    long_name = text
                else:
                    long_link = text
                continue
            size = header.size
            if "size" in pax:
                size = _pax_size(pax["size"])
            if header.typeflag in _HEADER_ONLY or header.typeflag == _FIFO:
                size = 0
            name = pax.get("path") or _text(long_name if long_name is not None else header.name)
            link = pax.get("linkpath") or _text(long_link if long_link is not None else header.link)
            pax, long_name, long_link, before = {}, None, None, _Extended()
            self._left, self._padding = size, _padded(size) - size
            yield Member(
                name=posixpath.normpath(name) if name else "",
                kind=_kind(header.typeflag),
                size=size,
                link=link if header.typeflag in (ord("1"), ord("2")) else "",
            )


def _kind(typeflag: int) -> Kind:
    if typeflag in _REGULAR:
        return "file"
    if typeflag == ord("2"):
        return "symlink"
    if typeflag == ord("1"):
        return "hardlink"
    return "other"


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _field(block: bytes, start: int, end: int) -> bytes:
    return block[start:end].partition(b"\0")[0]


def parse_number(raw: bytes) -> int:
    """A numeric header field: base-256 (first byte's high bit set) or octal."""
    if raw and raw[0] & 0x80:
        value = int.from_bytes(bytes([raw[0] & 0x7F]) + raw[1:], "big")
        if raw[0] & 0x40:  # the sign bit of base-256
            value -= 1 << (8 * len(raw) - 1)
        return value
    text = raw.partition(b"\0")[0].strip(b" ")
    if not text:
        return 0
    if not re.fullmatch(rb"[0-7]+", text):
        raise FormatError(f"a header's number field is not octal: {raw!r}")
    return int(text, 8)


def parse_header(block: bytes) -> _Header:
    """A 512-byte header block, checked as Go's ``archive/tar`` checks it."""
    try:
        stored = parse_number(block[148:156])
    except FormatError:
        raise FormatError("not a tar archive: a header's checksum is not a number") from None
    unsigned = sum(block[:148]) + 8 * 0x20 + sum(block[156:])
    signed = unsigned - 2 * sum(byte & 0x80 for byte in (*block[:148], *block[156:]))
    if stored not in (unsigned, signed):
        raise FormatError("not a tar archive: a header's checksum does not match")
    size = parse_number(block[124:136])
    if not 0 <= size <= MAX_SIZE:
        raise FormatError(f"a member's size is out of range ({size})")
    name = _field(block, 0, 100)
    if block[257:263] == b"ustar\0":  # POSIX ustar: a prefix extends the name
        prefix = _field(block, 345, 500)
        if prefix:
            name = prefix + b"/" + name
    return _Header(name=name, typeflag=block[156], size=size, link=_field(block, 157, 257))


def parse_pax(data: bytes) -> Iterator[tuple[str, str]]:
    """The records of a PAX extended header: ``"<length> <key>=<value>\\n"`` each, in order
    (a key may repeat; the last one counts), one at a time: a caller may stop early."""
    position = 0
    while position < len(data):
        space = data.find(b" ", position, position + 21)
        length_text = data[position:space]
        if space < 0 or not _DECIMAL.fullmatch(length_text):
            raise FormatError("a PAX record's length is not a decimal number")
        length = int(length_text)
        end = position + length
        if length < 5 or end > len(data):
            raise FormatError(f"a PAX record's length ({length}) does not fit the header")
        if data[end - 1] != ord("\n"):
            raise FormatError("a PAX record does not end with a newline")
        key, equals, value = data[space + 1 : end - 1].partition(b"=")
        if not equals or not key or b"\0" in key:
            raise FormatError("a PAX record has no key")
        try:
            name = key.decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError("a PAX record's key is not UTF-8") from None
        if name in ("path", "linkpath") and b"\0" in value:
            raise FormatError(f"a PAX {name} holds a NUL byte")
        yield name, _text(value)
        position = end


def _pax_size(value: str) -> int:
    if not _DECIMAL.fullmatch(value.encode("utf-8", "surrogateescape")):
        raise FormatError(f"a PAX size is not a decimal number ({value[:30]!r})")
    if int(value) > MAX_SIZE:
        raise FormatError(f"a PAX size is out of range ({value})")
    return int(value)
