"""JSON documents from outside: bounded in size, nesting, tokens and digits before they are
parsed, so that parsing them never holds the event loop nor recurses without end."""

from __future__ import annotations

import json

import anyio
import anyio.to_thread
import pytest

from ephemeral_registry._oci.documents import (
    MAX_DOCUMENT,
    MAX_NESTING,
    MAX_TOKENS,
    kind_of,
    parse,
    parse_array,
    parse_object,
)
from ephemeral_registry._oci.errors import FormatError


def nested(depth: int) -> bytes:
    return b'{"os":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


def test_nesting_up_to_the_bound_is_read_and_one_more_is_refused() -> None:
    assert parse_object(nested(MAX_NESTING), "it")["os"]
    with pytest.raises(FormatError, match=f"it nests arrays and objects more than {MAX_NESTING}"):
        parse(nested(MAX_NESTING + 1), "it")


@pytest.mark.parametrize("depth", [990, 100_000])
def test_deep_nesting_is_refused_before_json_can_recurse(depth: int) -> None:
    """990 deep parsed, then str() of it raised RecursionError; 100,000 deep json.loads did."""
    with pytest.raises(FormatError, match="more than 64 deep"):
        parse(nested(depth), "the config")


def test_brackets_and_commas_inside_strings_do_not_count() -> None:
    """A label may hold JSON as text: only the document's own structure is bounded."""
    text = "[" * 10_000 + "," * (2 * MAX_TOKENS) + '\\"]}'
    document = json.dumps({"config": {"Labels": {"a": text}}}).encode()
    assert parse_object(document, "it")["config"]["Labels"]["a"] == text


@pytest.mark.parametrize(
    "document",
    [
        b"[" + b",".join([b"1"] * MAX_TOKENS) + b"]",
        b"[" + b",".join([b"[]"] * (MAX_TOKENS // 2)) + b"]",
        b'{"os": [' + b",".join([b"1.5"] * (MAX_TOKENS + 1)) + b"]}",
        b'"a"' * (MAX_TOKENS + 1),  # not JSON, and stopped by the count all the same
    ],
    ids=["numbers", "arrays", "floats", "strings"],
)
def test_more_tokens_than_the_bound_are_refused(document: bytes) -> None:
    with pytest.raises(FormatError, match=f"more than {MAX_TOKENS} strings, commas and brackets"):
        parse(document, "it")


def test_a_document_just_within_the_token_bound_is_read() -> None:
    document = b"[" + b",".join([b"1"] * (MAX_TOKENS - 2)) + b"]"
    assert len(parse_array(document, "it")) == MAX_TOKENS - 2


def test_an_integer_of_too_many_digits_is_refused_and_a_long_float_is_not() -> None:
    """int() is quadratic in the digits; float() is not."""
    assert parse(b"[-" + b"9" * 32 + b"]", "it") == [-int("9" * 32)]
    assert parse(b"1." + b"1" * 1000, "it") == pytest.approx(1.111111)
    with pytest.raises(FormatError, match="it holds an integer of 33 digits"):
        parse(b'{"size": ' + b"1" * 33 + b"}", "it")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\xff{}", "not UTF-8"),
        (b"\xef\xbb\xbf{}", "not JSON"),  # a byte order mark: Go refuses it too
        ('{"a": 1}'.encode("utf-16"), "not UTF-8"),
        (b'["abc', "a malformed string"),
        (b'["a\x01"]', "a malformed string"),
        (b"[1, 2", "not JSON"),
        (b"]]]]" + b"[" * MAX_NESTING, "not JSON"),
        (b" " * (MAX_DOCUMENT + 1), f"(at most {MAX_DOCUMENT} are read)"),
    ],
)
def test_what_is_not_json_is_a_format_error(content: bytes, problem: str) -> None:
    with pytest.raises(FormatError, match=problem):
        parse(content, "it")


def test_the_shape_is_checked() -> None:
    with pytest.raises(FormatError, match="the JSON of it is not an object"):
        parse_object(b"[]", "it")
    with pytest.raises(FormatError, match="it is not an array"):
        parse_array(b"{}", "it")


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (None, "null"),
        (True, "true"),
        (7, "the number 7"),
        (1.5, "the number 1.5"),
        ("x" * 100, "a string"),
        ([1.5] * 100_000, "an array"),
        ({}, "an object"),
    ],
)
def test_a_value_is_named_in_a_message_without_being_written_out(value: object, said: str) -> None:
    assert kind_of(value) == said


def distinct_keys(count: int) -> bytes:
    """An object of ``count`` keys of 120 characters: the slowest to parse per token."""
    return b"{" + b",".join(b'"%0120d":0' % n for n in range(count)) + b"}"


@pytest.mark.anyio
async def test_a_document_at_the_bounds_does_not_hold_the_event_loop() -> None:
    """json.loads holds the GIL on a worker thread too: what it may take is bounded (4 MB of
    32,767 keys), and the scan before it returns to the loop every few milliseconds."""
    documents = [distinct_keys(MAX_TOKENS // 2 - 1), b'"' + b'\\"' * (MAX_DOCUMENT // 2 - 1) + b'"']
    gaps: list[float] = []

    async def tick() -> None:
        last = anyio.current_time()
        while True:
            await anyio.sleep(0.002)
            now = anyio.current_time()
            gaps.append(now - last)
            last = now

    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        await anyio.sleep(0.01)
        for document in documents:
            assert await anyio.to_thread.run_sync(parse, document, "it")
        tg.cancel_scope.cancel()
    assert max(gaps) < 0.1, f"the event loop was held for {max(gaps):.3f} s"
