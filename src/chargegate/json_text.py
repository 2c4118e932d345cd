"""JSON text for what chargegate writes (OCPI answers, OCPP calls, result POSTs, JSON columns):
orjson where it writes the same JSON value, the standard library otherwise.

Why: `json.dumps` was a visible share of every command's CPU
(docs/performance.md#json-through-orjson). What orjson would write differently from
`json.dumps`, or refuse (integers beyond 64 bits, keys that are not strings, types the standard
library does not encode either), falls back to `json.dumps`, so nothing that encoded before
fails or changes meaning now; NaN and infinities, which JSON does not allow, become null. Text
differs only in form: compact, and non-ASCII characters as UTF-8 rather than \\u escapes (the
same JSON to any reader).

Reading (`loads`) is orjson's where it reads the same value as `json.loads`, which is the
reference: text with a run of 19 or more digits (an integer orjson would read as a float, or a
number written with more digits than a double holds) and text orjson refuses (NaN, lone
surrogates, nesting past its limit, and whatever is not JSON at all) go to `json.loads`, which
then reads it or raises its own error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import orjson

# Datetimes and dataclasses go to `default`, as they would with json.dumps.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


# Integers orjson reads exactly fit in 64 bits: at most 19 digits signed, 20 unsigned.
_LONG_DIGITS = re.compile(r"[0-9]{19}")
_LONG_DIGITS_BYTES = re.compile(rb"[0-9]{19}")


def refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps_bytes(value: Any, default: Callable[[Any], Any] = refuse) -> bytes:
    """Compact UTF-8 JSON; `default` as json.dumps's (what to write for a value JSON has no
    type for, or TypeError)."""
    try:
        return orjson.dumps(value, default=default, option=_OPTIONS)
    except TypeError:
        return json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, default=default
        ).encode()


def dumps(value: Any, default: Callable[[Any], Any] = refuse) -> str:
    return dumps_bytes(value, default).decode()


def loads(text: str | bytes) -> Any:
    """The value `json.loads` reads from `text`, read faster where orjson reads the same."""
    long_digits = _LONG_DIGITS if isinstance(text, str) else _LONG_DIGITS_BYTES
    if long_digits.search(text):  # type: ignore[arg-type]  # str with str, bytes with bytes
        return json.loads(text)
    try:
        return orjson.loads(text)
    except Exception:  # orjson's refusal; json.loads says whether and why it is not JSON
        return json.loads(text)


# OCPI objects nest a few levels (a CDR's tariffs, elements, price components); what a peer
# sends nested deeper is refused on arrival, before Python's recursion limit is met reading it
# or writing it to a JSON column.
MAX_DEPTH = 32


def loads_document(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """`loads` for a body from a peer: ValueError also for nesting deeper than `max_depth` and
    for a NUL character, which no field may hold (PostgreSQL text cannot)."""
    if ("\\u0000" in text) if isinstance(text, str) else (b"\\u0000" in text):
        raise ValueError("NUL characters (\\u0000) are not allowed")
    try:
        value = loads(text)
    except RecursionError:
        raise ValueError(f"nested deeper than {max_depth} levels") from None
    level = [value]  # the values inside as many containers as iterations so far
    for _ in range(max_depth):
        level = [
            inner
            for item in level
            if isinstance(item, (dict, list))
            for inner in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return value
    if any(isinstance(item, (dict, list)) for item in level):
        raise ValueError(f"nested deeper than {max_depth} levels")
    return value
