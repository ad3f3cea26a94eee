"""The one tar reader: Go's archive/tar rules, any input a result or a FormatError."""

from __future__ import annotations

import io
import tarfile

import pytest

from ephemeral_registry._oci import tar as tar_module
from ephemeral_registry._oci.errors import FormatError
from ephemeral_registry._oci.tar import BLOCK, Member, TarReader, parse_pax

pytestmark = pytest.mark.anyio


def reader(data: bytes) -> TarReader:
    return reading(io.BytesIO(data))


def reading(stream: io.BytesIO) -> TarReader:
    """A reader of ``stream``, which tells how far it has read."""

    async def read_exactly(size: int) -> bytes:
        got = stream.read(size)
        if len(got) < size:
            raise EOFError
        return got

    return TarReader(read_exactly)


async def members(data: bytes) -> list[tuple[Member, bytes]]:
    tar = reader(data)
    found = []
    async for member in tar.members():
        found.append((member, await tar.read(member.size)))
    return found


def archive(*members: tuple[tarfile.TarInfo, bytes], tar_format: int = tarfile.PAX_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tar_format) as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def header(
    name: bytes = b"file", typeflag: bytes = b"0", size: bytes | None = None, size_value: int = 0
) -> bytes:
    """A ustar header block with a valid checksum, its size field given raw or as a number."""
    block = bytearray(BLOCK)
    block[0 : len(name)] = name
    block[100:108] = b"0000644\0"
    block[124:136] = size if size is not None else b"%011o\0" % size_value
    block[136:148] = b"00000000000\0"
    block[156:157] = typeflag
    block[257:265] = b"ustar\x0000"
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % BLOCK)


def pax_member(records: bytes, then: bytes = b"") -> bytes:
    return header(b"././@PaxHeader", b"x", size_value=len(records)) + padded(records) + then


END = bytes(2 * BLOCK)


@pytest.mark.parametrize(
    "tar_format", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]
)
async def test_what_tarfile_writes_is_read_back(tar_format: int) -> None:
    """Names over 100 bytes (GNU long names, PAX paths), links and data round-trip."""
    long = "d/" * 60 + "file"
    link = tarfile.TarInfo("link")
    link.type, link.linkname = tarfile.SYMTYPE, "d/target"
    data = archive(
        (tarfile.TarInfo(long if tar_format != tarfile.USTAR_FORMAT else "short"), b"x" * 700),
        (link, b""),
        tar_format=tar_format,
    )
    found = await members(data)
    assert [(m.name, m.kind, m.size, m.link, d) for m, d in found] == [
        (long if tar_format != tarfile.USTAR_FORMAT else "short", "file", 700, "", b"x" * 700),
        ("link", "symlink", 0, "d/target", b""),
    ]


async def test_a_pax_record_of_length_zero_is_an_error_not_a_loop() -> None:
    """The 3 KiB tarball that made tarfile-style parsing spin forever."""
    with pytest.raises(FormatError, match="length"):
        await members(pax_member(b"0 path=x\n", header() + END))


@pytest.mark.parametrize(
    ("records", "problem"),
    [
        (b"0 path=x\n", "length"),
        (b"3 a=\n", "length"),
        (b"99 path=x\n", "does not fit"),
        (b"x path=x\n", "not a decimal"),
        (b"-9 path=x\n", "not a decimal"),
        (b"10 path=xx", "newline"),
        (b"6 =xx\n", "no key"),
        (b"7 path\n", "no key"),
        (b"8 \xff\xfe=xx\n", "not UTF-8"),
        (b"12 path=a\0b\n", "NUL"),
        (b"11 size=-1\n", "not a decimal"),
        (b"13 size=1e10\n", "not a decimal"),
        (b"29 size=99999999999999999999\n", "not a decimal"),
        (b"28 size=9999999999999999999\n", "out of range"),
    ],
)
async def test_malformed_pax_headers_are_errors(records: bytes, problem: str) -> None:
    """Each as Go's archive/tar refuses it: never a bare ValueError or UnicodeDecodeError."""
    with pytest.raises(FormatError, match=problem):
        await members(pax_member(records, header() + END))


async def test_a_negative_base_256_size_is_an_error() -> None:
    """A GNU base-256 size field with its sign bit set."""
    with pytest.raises(FormatError, match="out of range"):
        await members(header(size=b"\xff" * 12) + END)


async def test_a_base_256_size_is_read() -> None:
    data = b"y" * 600
    size = b"\x80" + (600).to_bytes(11, "big")
    found = await members(header(size=size) + padded(data) + END)
    assert found[0][1] == data


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\x01" * BLOCK, "checksum"),
        (header()[:148] + b"9" * 8 + header()[156:], "checksum"),
        (header(size=b"0000000009z\0"), "not octal"),
        (header(size_value=10), "ends in the middle"),
        (header(b"L" * 10, b"L", size_value=1 << 20) + bytes(BLOCK), "extended header"),
        (b"", "ends in the middle"),
        (header(), "ends in the middle"),  # no end-of-archive marker
    ],
)
async def test_broken_archives_are_errors(data: bytes, problem: str) -> None:
    with pytest.raises(FormatError, match=problem):
        await members(data)


async def test_header_only_types_carry_no_data_whatever_their_size_says() -> None:
    """As in Go: a directory claiming 512 bytes is followed directly by the next header."""
    data = header(b"dir", b"5", size_value=512) + header(b"f", size_value=1) + padded(b"z") + END
    found = await members(data)
    assert [(m.name, m.kind, d) for m, d in found] == [("dir", "other", b""), ("f", "file", b"z")]


async def test_unread_data_is_skipped() -> None:
    data = archive((tarfile.TarInfo("a"), b"a" * 3000), (tarfile.TarInfo("b"), b"bb"))
    tar = reader(data)
    names = [member.name async for member in tar.members()]
    assert names == ["a", "b"]


async def test_reading_past_a_member_is_refused() -> None:
    tar = reader(archive((tarfile.TarInfo("a"), b"abc")))
    async for member in tar.members():
        with pytest.raises(FormatError):
            await tar.read(member.size + 1)
        break


def test_pax_records_are_parsed_in_linear_time() -> None:
    """A 64 KiB header of the shortest records: no copying per record."""
    records = b"6 a=b\n" * ((1 << 16) // 6)
    assert list(parse_pax(records)) == [("a", "b")] * ((1 << 16) // 6)


def record(key: str, value: str) -> bytes:
    """One PAX record, its length counting itself."""
    body = f" {key}={value}\n".encode()
    digits = next(n for n in range(1, 9) if len(str(len(body) + n)) == n)
    return b"%d%s" % (len(body) + digits, body)


def distinct_records(count: int, start: int = 0, value: str = "v") -> bytes:
    return b"".join(record(f"k{n}", value) for n in range(start, start + count))


def test_record_lengths_count_themselves() -> None:
    assert list(parse_pax(record("path", "x" * 95) + record("a", "b"))) == [
        ("path", "x" * 95),
        ("a", "b"),
    ]


async def test_a_thousand_pax_headers_in_a_row_are_refused_at_the_ninth() -> None:
    """The input that held 464 MiB: consecutive headers of distinct keys no longer pile up."""
    headers = b"".join(pax_member(distinct_records(4, start=4 * n)) for n in range(1000))
    stream = io.BytesIO(headers + header() + END)
    tar = reading(stream)
    with pytest.raises(FormatError, match="more than 8 extended headers in a row"):
        async for _ in tar.members():
            pass
    assert stream.tell() == 17 * BLOCK  # eight headers and their records, and the ninth header


def gnu_long(typeflag: bytes, size: int) -> bytes:
    return header(b"././@LongLink", typeflag, size_value=size) + padded(b"n" * size)


@pytest.mark.parametrize(
    ("extended", "problem"),
    [
        (b"".join(header(b"g", b"g") for _ in range(9)), "more than 8 extended headers"),
        (pax_member(b"") * 4 + gnu_long(b"L", 1) * 3 + gnu_long(b"K", 1) * 2, "more than 8"),
        (
            pax_member(record("a", "x" * 60_000)) * 2 + gnu_long(b"L", 60_000),
            "the extended headers before one member take more than 131072 bytes",
        ),
        (
            pax_member(distinct_records(200)) + pax_member(distinct_records(57, start=200)),
            "more than 256 PAX records before one member",
        ),
        (
            header(b"g", b"g", size_value=len(distinct_records(200)))
            + padded(distinct_records(200))
            + pax_member(distinct_records(57)),
            "more than 256 PAX records",
        ),
        (pax_member(b"6 a=b\n" * 10_000), "more than 256 PAX records"),
    ],
    ids=["9-global", "9-mixed", "bytes", "records", "global-records", "one-header"],
)
async def test_the_extended_headers_before_one_member_are_bounded_in_all(
    extended: bytes, problem: str
) -> None:
    """Global headers and GNU long names count with PAX ones: each kind alone is bounded,
    and so is what they add up to before one member."""
    with pytest.raises(FormatError, match=problem):
        await members(extended + header() + END)


async def test_the_bounds_before_a_member_start_again_at_each_member() -> None:
    """A hundred members of 200 records and a 120 KiB path and link each: all read."""
    path, link = "p" * 60_000, "l" * 60_000
    one = pax_member(distinct_records(198) + record("path", path)) + pax_member(
        record("linkpath", link)
    )
    found = await members((one + header(typeflag=b"2")) * 100 + END)
    assert [(m.name, m.kind, m.link) for m, _ in found] == [(path, "symlink", link)] * 100


@pytest.mark.parametrize("bound", ["MAX_ARCHIVE_PAX_RECORDS", "MAX_ARCHIVE_EXTENDED"])
async def test_the_extended_headers_of_a_whole_archive_are_bounded(
    monkeypatch: pytest.MonkeyPatch, bound: str
) -> None:
    """Members of 100 records each, within each member's bounds, up to the archive's bounds:
    made small here (ten members' worth), as the real ones take tens of MiB to reach."""
    records = distinct_records(100)
    limit = 10 * (100 if bound == "MAX_ARCHIVE_PAX_RECORDS" else len(records))
    monkeypatch.setattr(tar_module, bound, limit)
    one = pax_member(records) + header()
    await members(one * 10 + END)
    with pytest.raises(FormatError, match=rf"more than {limit} (PAX records|bytes)"):
        await members(one * 11 + END)
