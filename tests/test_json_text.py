"""What chargegate writes as JSON (json_text.py) is the JSON value json.dumps writes, whatever
the value: orjson where it agrees, the standard library where it would not."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ocpp.messages import Call

from chargegate import json_text
from chargegate.ocpp.link import call_frame

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # beyond 64 bits too: orjson refuses those
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.text(max_size=8), inner, max_size=5),
        st.dictionaries(st.integers(), inner, max_size=3),  # json.dumps writes int keys as text
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(value=_VALUES)
def test_the_same_json_value_as_the_standard_library(value: Any) -> None:
    assert json.loads(json_text.dumps(value)) == json.loads(json.dumps(value))
    assert json_text.dumps_bytes(value).decode() == json_text.dumps(value)


def test_non_ascii_is_written_as_utf8() -> None:
    assert json_text.dumps_bytes({"name": "Zoë"}) == '{"name":"Zoë"}'.encode()


def test_what_json_refuses_is_refused() -> None:
    with pytest.raises(TypeError, match="Decimal is not JSON serializable"):
        json_text.dumps({"limit": Decimal("1.5")})
    with pytest.raises(TypeError, match="datetime is not JSON serializable"):
        json_text.dumps({"at": datetime(2026, 12, 1, tzinfo=UTC)})
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        json_text.dumps({"ids": {1, 2}})


def test_nan_becomes_null() -> None:
    assert json_text.dumps([math.nan, math.inf]) == "[null,null]"


def test_a_call_frame_is_the_json_the_ocpp_library_writes() -> None:
    call = Call(
        unique_id="u-1",
        action="SetChargingProfile",
        payload={
            "connectorId": 1,
            "csChargingProfiles": {"chargingSchedule": {"limit": Decimal("21.46")}},
            "label": "Zoë",
        },
    )
    frame = call_frame(call)
    assert json.loads(frame) == json.loads(call.to_json())
    assert '"limit":21.5' in frame  # one fraction digit, as the library writes a Decimal
    assert frame.startswith('[2,"u-1","SetChargingProfile",{')


@pytest.mark.parametrize("limit", ["0.15", "21.25", "21.35", "7", "-3.05"])
def test_a_call_frame_rounds_a_decimal_as_the_ocpp_library(limit: str) -> None:
    call = Call(unique_id="u-2", action="X", payload={"limit": Decimal(limit)})
    assert json.loads(call_frame(call)) == json.loads(call.to_json())


def _same_value(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 and 1.0 are equal but not the same)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    return bool(a == b)


_READ_VALUES = st.recursive(
    st.one_of(
        _SCALARS,
        st.floats(),  # NaN and infinities: json.dumps writes NaN / Infinity, which orjson refuses
        st.integers(min_value=-(2**64), max_value=2**64),  # around orjson's 64-bit limits
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(value=_READ_VALUES, ascii_only=st.booleans(), as_bytes=st.booleans())
def test_reads_the_value_the_standard_library_reads(
    value: Any, ascii_only: bool, as_bytes: bool
) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    raw: str | bytes = text.encode("utf-8", errors="surrogatepass") if as_bytes else text
    if as_bytes and not ascii_only and any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return  # not UTF-8: json.loads refuses it as well
    assert _same_value(json_text.loads(raw), json.loads(raw))


@pytest.mark.parametrize(
    "text",
    [
        "18446744073709551616",  # beyond 64 bits: orjson would read a float
        "[-9999999999999999999]",  # 19 digits below the signed 64-bit range
        "0.12345678901234567890123",  # more digits than a double holds
        '{"a": NaN, "b": -Infinity}',
        '"\\ud800"',  # a lone surrogate: orjson refuses it
        '{"a": 1, "a": 2}',
    ],
)
def test_reads_what_orjson_would_read_differently_or_refuse(text: str) -> None:
    assert _same_value(json_text.loads(text), json.loads(text))


@pytest.mark.parametrize("text", ["", "[1,", "{'a': 1}", "[1] x", "\x00"])
def test_what_is_not_json_raises_the_standard_librarys_error(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(text)
    with pytest.raises(json.JSONDecodeError) as ours:
        json_text.loads(text)
    assert str(ours.value) == str(theirs.value)
