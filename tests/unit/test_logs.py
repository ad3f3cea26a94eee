"""The engine's multiplexed output: frames split in any pieces, lines in the order written."""

from __future__ import annotations

import pytest

from ephemeral_registry._logs import MAX_LINE, FrameError, Frames, Lines, Stream


def frame(stream: Stream, payload: bytes) -> bytes:
    kind = {"stdout": 1, "stderr": 2}[stream]
    return bytes([kind, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


WRITES: list[tuple[Stream, bytes]] = [
    ("stderr", b"2026/11/28 pushing\n"),
    ("stdout", b"partial "),
    ("stderr", b"layer 1 done\nlayer 2 "),
    ("stdout", b"line\n"),
    ("stderr", b"done\n"),
    ("stdout", b""),
    ("stdout", b"127.0.0.1:5000/app@sha256:" + b"a" * 64),
]
STREAM = b"".join(frame(stream, payload) for stream, payload in WRITES)


def joined(pieces: list[tuple[Stream, bytes]]) -> list[tuple[Stream, bytes]]:
    """Consecutive pieces of one stream joined: what was written, without empty writes."""
    out: list[tuple[Stream, bytes]] = []
    for stream, payload in pieces:
        if out and out[-1][0] == stream:
            out[-1] = (stream, out[-1][1] + payload)
        elif payload:
            out.append((stream, payload))
    return out


@pytest.mark.parametrize("piece", [1, 3, 8, 9, 1000])
def test_frames_come_out_in_order_however_the_bytes_are_cut(piece: int) -> None:
    """Frames split across reads at any point come out as written, in pieces as they came."""
    frames = Frames()
    out = [f for i in range(0, len(STREAM), piece) for f in frames.feed(STREAM[i : i + piece])]
    frames.end()
    assert all(payload for _, payload in out)
    assert joined(out) == joined(WRITES)


def test_a_frame_that_claims_gigabytes_holds_nothing_back() -> None:
    """Its payload is handed on as it arrives: memory does not grow with the claim."""
    frames = Frames()
    header = bytes([2, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF])
    assert list(frames.feed(header + b"x" * 100)) == [("stderr", b"x" * 100)]
    assert list(frames.feed(b"y" * 10)) == [("stderr", b"y" * 10)]
    with pytest.raises(FrameError, match="inside a frame"):
        frames.end()


def test_a_long_line_without_newline_is_linear_and_cut_into_parts() -> None:
    """2 MB fed a KiB at a time: each byte searched once; lines of at most MAX_LINE bytes."""
    lines = Lines()
    out = [line for _ in range(2048) for line in lines.feed("stderr", b"z" * 1024)]
    out += lines.end()
    assert "".join(map(str, out)) == "z" * (2 << 20)
    assert {len(str(line)) for line in out} == {MAX_LINE}


def test_lines_keep_the_order_between_streams_and_each_streams_unfinished_line() -> None:
    """A line is emitted when its newline arrives; the unfinished ones come at the end."""
    lines = Lines()
    out = [line for stream, payload in WRITES for line in lines.feed(stream, payload)]
    out += lines.end()
    assert [(line.stream, str(line)) for line in out] == [
        ("stderr", "2026/11/28 pushing"),
        ("stderr", "layer 1 done"),
        ("stdout", "partial line"),
        ("stderr", "layer 2 done"),
        ("stdout", "127.0.0.1:5000/app@sha256:" + "a" * 64),
    ]
    assert lines.received == {"stdout": 8 + 5 + 90, "stderr": 19 + 21 + 5}


@pytest.mark.parametrize("cut", range(len(WRITES) + 1))
def test_a_second_read_from_the_start_continues_without_repeating(cut: int) -> None:
    """Replaying the whole output after a follow that stopped early yields each line once."""
    whole = Lines()
    expected = [line for stream, payload in WRITES for line in whole.feed(stream, payload)]
    expected += whole.end()

    lines = Lines()
    out = [line for stream, payload in WRITES[:cut] for line in lines.feed(stream, payload)]
    # A second read may frame the same bytes differently: here, a byte at a time.
    for stream, payload in WRITES:
        for i in range(len(payload)):
            out += lines.replay(stream, payload[i : i + 1])
    out += lines.end()
    assert [(line.stream, str(line)) for line in out] == [
        (line.stream, str(line)) for line in expected
    ]


@pytest.mark.parametrize(
    "data",
    [b"\x03\x00\x00\x00\x00\x00\x00\x01x", b"\x01\x00\x01\x00\x00\x00\x00\x01x", b"plain text"],
)
def test_what_is_not_framed_is_an_error(data: bytes) -> None:
    """A TTY's raw output or garbage is refused, not misread as frames."""
    with pytest.raises(FrameError):
        list(Frames().feed(data))


def test_a_stream_cut_inside_a_frame_is_an_error() -> None:
    """Bytes left over at the end mean the answer broke off."""
    frames = Frames()
    assert joined(list(frames.feed(STREAM[:-3]))) == joined(
        [*WRITES[:-1], (WRITES[-1][0], WRITES[-1][1][:-3])]
    )
    with pytest.raises(FrameError, match="inside a frame"):
        frames.end()
