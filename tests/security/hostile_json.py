"""Hypothesis strategies for what a hostile or careless peer puts in a JSON body: any JSON at all,
odd strings and dates, numbers past every integer type, and a valid object with fields deleted,
replaced or added; plus bytes that are not JSON."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

ODD_STRINGS = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "CP-1\x00",
        "é" * 36,
        "😀" * 37,
        "\u202eRTL",
        "a" * 37,
        "a" * 256,
        "x" * 100_000,
        "../../etc/passwd",
        "' OR 1=1 --",
        "%s%s%n",
        "NaN",
        "null",
        "\ud7ff\ue000\uffff",
        "１２３",  # full-width digits: str.isdigit() but not ASCII
        "¹²³",
        "<script>alert(1)</script>",
    ]
)
ODD_DATES = st.sampled_from(
    [
        "yesterday",
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-01-01T25:00:00Z",
        "2026-01-01",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "+275760-09-13T00:00:00Z",
        "2026-01-01T00:00:00+14:00",
        "2026-01-01T00:00:00-23:59",
        "2026-01-01T00:00:00.123456789Z",
        "1970-01-01T00:00:00Z",
        "2026-W01-1",
        "1767225600",
    ]
) | st.datetimes().map(lambda d: d.isoformat())
HUGE_NUMBERS = st.sampled_from(
    [2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 2**70, -(2**63) - 1, 10**40, 10**400]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | HUGE_NUMBERS
    | st.floats()  # NaN and ±Infinity included: json.dumps writes them, Python parses them
    | st.text(max_size=40)
    | ODD_STRINGS
    | ODD_DATES
)
ANY_JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
# Deeply nested: recursion limits in parsers and validators (raw text, deeper than Python's
# json module can write).
DEEP = st.integers(min_value=50, max_value=5000).map(lambda n: "[" * n + "]" * n)


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


NESTED = st.integers(min_value=20, max_value=400).map(_nested)
NOT_JSON = st.binary(max_size=64) | st.sampled_from(
    [
        b"",
        b"{",
        b'{"a":',
        b"\xff\xfe{}",
        b'{"a": "\xed\xa0\x80"}',  # a UTF-8 encoded surrogate
        b'{"a": "\\ud800"}',  # a lone surrogate escape
        b'{"reservation_id": ' + b"9" * 5000 + b"}",  # past Python's int digit limit
        b"[]" * 1000,
    ]
)


def encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _slots(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in `value` a mutation can hit, as the path of keys and indexes to it."""
    found = [path] if path else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _slots(inner, (*path, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _slots(inner, (*path, index))
    return found


def _parent(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        value = value[key]
    return value


def _same_type(value: Any) -> st.SearchStrategy[Any]:
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.integers() | HUGE_NUMBERS
    if isinstance(value, str):
        return st.text(max_size=40) | ODD_STRINGS | ODD_DATES
    return ANY_JSON


@st.composite
def mutated(draw: st.DrawFn, valid: dict[str, Any]) -> dict[str, Any]:
    """`valid` with one to four fields deleted, replaced by something hostile, or added."""
    body = copy.deepcopy(valid)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        slots = _slots(body)
        if not slots:
            break
        path = draw(st.sampled_from(slots))
        parent = _parent(body, path)
        action = draw(st.sampled_from(["delete", "replace", "respell", "respell", "add"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "add":
            target = parent if isinstance(parent, dict) else body
            target[draw(st.text(max_size=12) | ODD_STRINGS)] = draw(ANY_JSON)
        elif action == "respell":  # the same type, an odd value: gets past type checks
            parent[path[-1]] = draw(_same_type(parent[path[-1]]))
        else:
            parent[path[-1]] = draw(SCALARS | ANY_JSON | NESTED)
    return body


def body_bytes(valid: dict[str, Any]) -> st.SearchStrategy[bytes]:
    """A request body near `valid`: itself, mutated, any JSON at all, or not JSON."""
    return st.one_of(
        st.just(valid).map(encode),
        mutated(valid).map(encode),
        mutated(valid).map(encode),
        mutated(valid).map(encode),
        ANY_JSON.map(encode),
        DEEP.map(str.encode),
        NOT_JSON,
    )
