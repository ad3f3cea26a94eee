"""JSON documents from outside (indexes, manifests, configs, a save's ``manifest.json``),
parsed within bounds.

``json.loads`` runs in C: it holds the GIL for its whole run, so on a worker
thread too it stops the event loop for as long as it takes (a 7.5 MB
document of short values: 270 ms; 8 MiB of ``[]``: 490 ms). What a document
may hold is therefore checked before it is parsed, by ``scan``, a loop of
bounded steps that ends at the first bound passed:

- at most ``MAX_DOCUMENT`` bytes, of UTF-8 (as Go's ``encoding/json`` reads:
  no byte order mark, no UTF-16);
- at most ``MAX_NESTING`` arrays and objects deep: ``json.loads`` recurses
  once a level, and so does anything that walks the result (``str()`` of a
  list 990 deep raised ``RecursionError``);
- at most ``MAX_TOKENS`` strings, commas and brackets, which is what the
  parsing's time follows (a document at the bounds parses in 30 ms at most:
  32,767 distinct keys of 250 characters);
- integers of at most ``MAX_INTEGER_DIGITS`` digits (``int()`` takes time
  quadratic in the digits: 2,000 of 4,000 digits took 180 ms).

Brackets and commas inside strings are not counted: a label may hold JSON
as text. Anything else is a ``FormatError``. Every document's bytes are held
anyway; what the parsing makes of them is bounded by these.
"""

from __future__ import annotations

import json
import re
from _json import scanstring  # the C one json.decoder uses
from typing import Any

from .errors import FormatError

MAX_DOCUMENT = 8 << 20
"""The largest JSON document read whole (an index, a manifest, a config)."""
MAX_NESTING = 64
"""How deep arrays and objects may nest (a config nests 4 deep, an index 5)."""
MAX_TOKENS = 1 << 16
"""The most strings, commas and brackets a document may hold (a config with a history of
127 layers holds about 2,000; an index of 1,024 manifests about 20,000)."""
MAX_INTEGER_DIGITS = 32
"""The longest integer (sizes are int64, of at most 19 digits)."""

_TOKEN = re.compile(r'["\[\]{},]')
_WINDOW = 1 << 16
"""How much text one search for the next token covers: each step holds the GIL briefly."""


def scan(text: str, what: str) -> None:
    """Check ``text`` against the bounds above before it is parsed (FormatError if not).

    Where ``text`` is not JSON, the scan may pass it (``json.loads`` then says
    so) or refuse it: up to the first byte that is not JSON, the two read the
    same strings and brackets, so what passes nests no deeper than the scan saw.
    """
    depth = tokens = 0
    position, end = 0, len(text)
    while position < end:
        found = _TOKEN.search(text, position, min(position + _WINDOW, end))
        if found is None:
            position += _WINDOW
            continue
        tokens += 1
        if tokens > MAX_TOKENS:
            raise FormatError(f"{what} holds more than {MAX_TOKENS} strings, commas and brackets")
        position = found.end()
        token = found.group()
        if token == '"':
            try:
                position = scanstring(text, position)[1]
            except ValueError:  # not terminated, a control character, a bad escape
                raise FormatError(f"{what} is not JSON (a malformed string)") from None
        elif token in "[{":
            depth += 1
            if depth > MAX_NESTING:
                raise FormatError(f"{what} nests arrays and objects more than {MAX_NESTING} deep")
        elif token in "]}":
            depth -= 1


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise FormatError(f"an integer of {len(text)} digits (at most {MAX_INTEGER_DIGITS})")
    return int(text)


def parse(content: bytes, what: str) -> Any:
    """The JSON value of ``content``, within the bounds above; FormatError otherwise.

    Blocking, and up to tens of milliseconds: call it on a worker thread.
    """
    if len(content) > MAX_DOCUMENT:
        raise FormatError(f"{what} has {len(content)} bytes (at most {MAX_DOCUMENT} are read)")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(f"{what} is not JSON (not UTF-8)") from None
    scan(text, what)
    try:
        return json.loads(text, parse_int=_integer)
    except FormatError as exc:
        raise FormatError(f"{what} holds {exc}") from None
    except ValueError as exc:  # JSONDecodeError: the first byte that is not JSON
        raise FormatError(f"{what} is not JSON ({exc})") from None


def kind_of(value: object) -> str:
    """What a JSON value is, for a message, without writing it all out (it may be megabytes)."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int | float):
        return f"the number {value!r:.40}"
    if isinstance(value, dict):
        return "an object"
    return "an array" if isinstance(value, list) else "a string"


def parse_object(content: bytes, what: str) -> dict[str, Any]:
    """A JSON object, within bounds (see ``parse``)."""
    document = parse(content, what)
    if not isinstance(document, dict):
        raise FormatError(f"the JSON of {what} is not an object")
    return document


def parse_array(content: bytes, what: str) -> list[Any]:
    """A JSON array, within bounds (see ``parse``)."""
    document = parse(content, what)
    if not isinstance(document, list):
        raise FormatError(f"{what} is not an array")
    return document
