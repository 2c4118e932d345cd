"""Random OCPP-J frames (hypothesis), OCPP 1.6 and 2.0.1, on one connection: a CALL gets one
answer to its id, a reply none, anything else one CALLERROR; none is InternalError, none breaks
the connection, and after each the gateway answers a BootNotification.
CHARGEGATE_FUZZ_EXAMPLES sets the examples per version (200 by default, as CI runs it); the
terminal summary prints how many ran."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection

from ..conftest import Gateway
from ..support.servers import running
from .fuzz_counts import record
from .ocpp_wire import VERSIONS, open_station, probe

EXAMPLES = int(os.environ.get("CHARGEGATE_FUZZ_EXAMPLES", "200"))
NOW = "2026-01-01T12:00:00Z"

# Valid CALL payloads of both versions, which the strategies below break one field at a time.
VALID: list[tuple[str, dict[str, Any]]] = [
    ("BootNotification", {"chargePointVendor": "v", "chargePointModel": "m"}),
    ("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}),
    ("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": NOW}),
    ("StopTransaction", {"meterStop": 10, "timestamp": NOW, "transactionId": 1}),
    (
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": 1,
            "meterValue": [{"timestamp": NOW, "sampledValue": [{"value": "10"}]}],
        },
    ),
    ("Authorize", {"idTag": "T"}),
    ("DataTransfer", {"vendorId": "v"}),
    (
        "BootNotification",
        {"reason": "PowerUp", "chargingStation": {"vendorName": "v", "model": "m"}},
    ),
    (
        "StatusNotification",
        {"timestamp": NOW, "connectorStatus": "Available", "evseId": 1, "connectorId": 1},
    ),
    (
        "TransactionEvent",
        {
            "eventType": "Started",
            "timestamp": NOW,
            "triggerReason": "Authorized",
            "seqNo": 0,
            "transactionInfo": {"transactionId": "tx-fuzz"},
            "evse": {"id": 1, "connectorId": 1},
            "meterValue": [{"timestamp": NOW, "sampledValue": [{"value": 10}]}],
        },
    ),
    ("NotifyReport", {"requestId": 1, "generatedAt": NOW, "seqNo": 0}),
]
ACTIONS = sorted({action for action, _ in VALID} | {"Heartbeat", "FlyToTheMoon", "Reset"})

# Values at the edges first: what a handler could trip over (out of 32 bits, negative ids,
# dates and numbers in strings) is drawn as often as arbitrary values.
edges = st.sampled_from(
    [-1, 0, 65, 2**31, 2**40, 2**70, -(2**70), 1e300, "NaN", "1e300", "yesterday", NOW, "", "-1"]
)
scalars = st.one_of(
    edges,
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def broken_payload_calls(draw: st.DrawFn) -> str:
    action, payload = draw(st.sampled_from(VALID))
    payload = json.loads(json.dumps(payload))
    key = draw(st.sampled_from(sorted(payload)))
    how = draw(st.sampled_from(["drop", "replace", "add"]))
    if how == "drop":
        del payload[key]
    elif how == "replace":
        payload[key] = draw(json_values)
    else:
        payload[draw(st.text(min_size=1, max_size=12))] = draw(json_values)
    return json.dumps([2, draw(st.text(min_size=1, max_size=36)), action, payload])


frames = st.one_of(
    broken_payload_calls(),
    st.text(max_size=200),  # mostly not JSON
    json_values.map(json.dumps),  # JSON, mostly not a frame
    st.tuples(
        st.sampled_from([0, 1, 2, 3, 4, 5, 6, "2", None, 2.0, True]),
        st.text(max_size=40) | st.integers(),
        st.sampled_from(ACTIONS) | st.text(max_size=20),
        json_values,
    ).map(lambda parts: json.dumps(list(parts))),
)


def answers_expected(frame: str) -> tuple[int, str | None]:
    """(how many answers the frame must get, the id they go to if known): a CALL one, a reply
    none, anything else one CALLERROR (to its id, or to "-1", which is not checked here)."""
    try:
        message = json.loads(frame)
    except (ValueError, RecursionError):
        return 1, None
    if not isinstance(message, list) or len(message) < 2:
        return 1, None
    kind, unique_id = message[0], message[1]
    readable = isinstance(unique_id, str) and 0 < len(unique_id) <= 36
    if type(kind) is int and kind in (3, 4) and readable:
        return 0, None
    return 1, unique_id if readable else None


@pytest.fixture(params=VERSIONS)
async def fuzzed(
    request: pytest.FixtureRequest, database_url: str
) -> AsyncIterator[tuple[ClientConnection, str]]:
    if "postgres" in database_url:
        pytest.skip("the frames never reach the database differently; SQLite is enough")
    subprotocol = str(request.param)
    # Limits high enough that hundreds of frames a second are served at once.
    fast = {"ocpp_max_frames_per_second": 100000.0, "ocpp_frame_burst": 100000}
    async with running(Gateway(database_url, **fast)) as gateway:
        ws = await open_station(gateway.ws_url, "FUZZ-RANDOM", subprotocol)
        await probe(ws, subprotocol, "boot")
        yield ws, subprotocol
        await ws.close()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frame=frames)
async def test_random_frames_are_answered_as_ocpp_j_says_never_internal_error(
    fuzzed: tuple[ClientConnection, str], frame: str
) -> None:
    ws, subprotocol = fuzzed
    record(f"ocpp frames: hypothesis ({subprotocol})", 1)
    await ws.send(frame)
    answers = await probe(ws, subprotocol)
    expected, unique_id = answers_expected(frame)
    assert len(answers) == expected, (frame, answers)
    for answer in answers:
        assert answer[0] in (3, 4), answer
        if answer[0] == 4:
            assert answer[2] != "InternalError", (frame, answer)
        if unique_id is not None:
            assert answer[1] == unique_id, (frame, answer)
