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
