"""Malformed OCPP-J frames, OCPP 1.6 and 2.0.1: each gets the CALLERROR code OCPP-J names for
it (or the close code RFC 6455 names), never InternalError, nothing is stored, and the gateway
still answers a BootNotification afterwards, on the same connection or, after a close, a new one.
docs/security.md#ocpp-j-robustness has the table these tests follow."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from chargegate.ocpp.connection import FrameLimits, LoggedConnection
from chargegate.store.comm_log import CommunicationLog

from ..conftest import Gateway
from ..support.operator import OperatorClient
from ..support.servers import running
from .fuzz_counts import record
from .ocpp_wire import VERSIONS, next_frame, open_station, probe

NOW = "2026-01-01T12:00:00Z"
DEEP = 5000


@pytest.fixture(params=VERSIONS)
def subprotocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def station(gateway: Gateway, subprotocol: str) -> AsyncIterator[ClientConnection]:
    ws = await open_station(gateway.ws_url, "FUZZ-1", subprotocol)
    await probe(ws, subprotocol, "boot")
    yield ws
    await ws.close()


def _code(subprotocol: str, v16: str, v201: str) -> str:
    return v16 if subprotocol == "ocpp1.6" else v201


# (name, frame text, expected id, code in 1.6, code in 2.0.1)
FRAME_CASES: list[tuple[str, str, str, str, str]] = [
    (
        "invalid JSON, id readable",
        '[2,"j1","Heartbeat",{',
        "j1",
        "FormationViolation",
        "FormatViolation",
    ),
    ("invalid JSON, no id", "not json at all", "-1", "FormationViolation", "RpcFrameworkError"),
    ("JSON object, not array", '{"a": 1}', "-1", "FormationViolation", "RpcFrameworkError"),
    ("empty array", "[]", "-1", "FormationViolation", "RpcFrameworkError"),
    ("numeric id", '[2,17,"Heartbeat",{}]', "-1", "FormationViolation", "RpcFrameworkError"),
    (
        "id over 36 characters",
        json.dumps([2, "x" * 37, "Heartbeat", {}]),
        "-1",
        "FormationViolation",
        "RpcFrameworkError",
    ),
    (
        "message type 0",
        '[0,"t0","Heartbeat",{}]',
        "t0",
        "FormationViolation",
        "MessageTypeNotSupported",
    ),
    (
        "message type 5",
        '[5,"t5","GenericError","",{}]',
        "t5",
        "FormationViolation",
        "MessageTypeNotSupported",
    ),
    (
        'message type "2"',
        '["2","ts","Heartbeat",{}]',
        "ts",
        "FormationViolation",
        "RpcFrameworkError",
    ),
    ("CALL without payload", '[2,"a","Heartbeat"]', "a", "FormationViolation", "RpcFrameworkError"),
    (
        "CALL with extra element",
        '[2,"a2","Heartbeat",{},{}]',
        "a2",
        "FormationViolation",
        "RpcFrameworkError",
    ),
    ("action not a string", '[2,"a3",{"x":1},{}]', "a3", "FormationViolation", "RpcFrameworkError"),
    (
        "payload not an object",
        '[2,"p1","Heartbeat",[]]',
        "p1",
        "TypeConstraintViolation",
        "TypeConstraintViolation",
    ),
    ("unknown action", '[2,"u1","FlyToTheMoon",{}]', "u1", "NotImplemented", "NotImplemented"),
    (
        "deep nesting, id readable",
        '[2,"d1","DataTransfer",{"vendorId":"v","data":' + "[" * DEEP + "]" * DEEP + "}]",
        "d1",
        "FormationViolation",
        "FormatViolation",
    ),
    (
        "deep nesting, parsable",
        '[2,"d2","DataTransfer",{"vendorId":"v","data":' + "[" * 200 + "]" * 200 + "}]",
        "d2",
        "FormationViolation",
        "FormatViolation",
    ),
    (
        "deep nesting, no id",
        "[" * DEEP + "]" * DEEP,
        "-1",
        "FormationViolation",
        "RpcFrameworkError",
    ),
    (
        "NaN literal",
        '[2,"n1","Heartbeat",{"x":NaN}]',
        "n1",
        "TypeConstraintViolation",
        "TypeConstraintViolation",
    ),
    (
        "integer beyond 64 bits",
        '[2,"i1","Heartbeat",{"x":' + "9" * 30 + "}]",
        "i1",
        "TypeConstraintViolation",
        "TypeConstraintViolation",
    ),
]


@pytest.mark.parametrize(
    ("frame", "unique_id", "v16", "v201"),
    [case[1:] for case in FRAME_CASES],
    ids=[case[0] for case in FRAME_CASES],
)
async def test_broken_frame_gets_its_callerror_and_the_station_is_still_served(
    station: ClientConnection, subprotocol: str, frame: str, unique_id: str, v16: str, v201: str
) -> None:
    record("ocpp frames: hand-written", 1)
    await station.send(frame)
    answer = await next_frame(station)
    assert answer[:3] == [4, unique_id, _code(subprotocol, v16, v201)], answer
    assert await probe(station, subprotocol) == []


# Payloads per version: (name, action, payload, code)
SCHEMA_CASES: dict[str, list[tuple[str, str, dict[str, Any], str]]] = {
    "ocpp1.6": [
        ("required field missing", "BootNotification", {"chargePointVendor": "v"}, "ProtocolError"),
        (
            "wrong type",
            "BootNotification",
            {"chargePointVendor": 5, "chargePointModel": "m"},
            "TypeConstraintViolation",
        ),
        (
            "string too long",
            "BootNotification",
            {"chargePointVendor": "v" * 21, "chargePointModel": "m"},
            "TypeConstraintViolation",
        ),
        ("unknown property", "Heartbeat", {"surprise": 1}, "FormationViolation"),
        (
            "enum value unknown",
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError", "status": "Exploded"},
            "FormationViolation",
        ),
        ("CSMS-to-station action", "RemoteStartTransaction", {"idTag": "t"}, "NotSupported"),
        (
            "meterStart 2^70",
            "StartTransaction",
            {"connectorId": 1, "idTag": "T", "meterStart": 2**70, "timestamp": NOW},
            "TypeConstraintViolation",
        ),
        (
            "meterStart negative",
            "StartTransaction",
            {"connectorId": 1, "idTag": "T", "meterStart": -5, "timestamp": NOW},
            "PropertyConstraintViolation",
        ),
        (
            "timestamp yesterday",
            "StartTransaction",
            {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "yesterday"},
            "TypeConstraintViolation",
        ),
        (
            "connector 0 starts",
            "StartTransaction",
            {"connectorId": 0, "idTag": "T", "meterStart": 0, "timestamp": NOW},
            "PropertyConstraintViolation",
        ),
        (
            "connector -1",
            "StatusNotification",
            {"connectorId": -1, "errorCode": "NoError", "status": "Available"},
            "PropertyConstraintViolation",
        ),
        (
            "connector 65",
            "StatusNotification",
            {"connectorId": 65, "errorCode": "NoError", "status": "Available"},
            "PropertyConstraintViolation",
        ),
        (
            "connector 2^40",
            "StatusNotification",
            {"connectorId": 2**40, "errorCode": "NoError", "status": "Available"},
            "TypeConstraintViolation",
        ),
        (
            "meter value NaN",
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": 1,
                "meterValue": [{"timestamp": NOW, "sampledValue": [{"value": "NaN"}]}],
            },
            "PropertyConstraintViolation",
        ),
        (
            "meter value 1e300 kWh",
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": 1,
                "meterValue": [
                    {"timestamp": NOW, "sampledValue": [{"value": "1e300", "unit": "kWh"}]}
                ],
            },
            "PropertyConstraintViolation",
        ),
        (
            "meter timestamp garbage",
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": 1,
                "meterValue": [{"timestamp": "soon", "sampledValue": [{"value": "10"}]}],
            },
            "TypeConstraintViolation",
        ),
    ],
    "ocpp2.0.1": [
        ("required field missing", "BootNotification", {"reason": "PowerUp"}, "ProtocolError"),
        ("wrong type", "Heartbeat", {"customData": {"vendorId": 5}}, "TypeConstraintViolation"),
        ("unknown property", "Heartbeat", {"surprise": 1}, "FormatViolation"),
        (
            "CSMS-to-station action",
            "RequestStartTransaction",
            {"idToken": {"idToken": "t", "type": "ISO14443"}, "remoteStartId": 1},
            "NotSupported",
        ),
        (
            "timestamp yesterday",
            "StatusNotification",
            {
                "timestamp": "yesterday",
                "connectorStatus": "Available",
                "evseId": 1,
                "connectorId": 1,
            },
            "TypeConstraintViolation",
        ),
        (
            "EVSE -1",
            "StatusNotification",
            {"timestamp": NOW, "connectorStatus": "Available", "evseId": -1, "connectorId": 1},
            "PropertyConstraintViolation",
        ),
        (
            "EVSE 65",
            "StatusNotification",
            {"timestamp": NOW, "connectorStatus": "Available", "evseId": 65, "connectorId": 1},
            "PropertyConstraintViolation",
        ),
        (
            "EVSE 2^40",
            "StatusNotification",
            {"timestamp": NOW, "connectorStatus": "Available", "evseId": 2**40, "connectorId": 1},
            "TypeConstraintViolation",
        ),
        (
            "transaction EVSE -1",
            "TransactionEvent",
            {
                "eventType": "Started",
                "timestamp": NOW,
                "triggerReason": "Authorized",
                "seqNo": 0,
                "transactionInfo": {"transactionId": "tx-bad"},
                "evse": {"id": -1},
            },
            "PropertyConstraintViolation",
        ),
        (
            "transaction timestamp garbage",
            "TransactionEvent",
            {
                "eventType": "Started",
                "timestamp": "yesterday",
                "triggerReason": "Authorized",
                "seqNo": 0,
                "transactionInfo": {"transactionId": "tx-bad"},
            },
            "TypeConstraintViolation",
        ),
        (
            "meter value as a string",
            "TransactionEvent",
            {
                "eventType": "Started",
                "timestamp": NOW,
                "triggerReason": "Authorized",
                "seqNo": 0,
                "transactionInfo": {"transactionId": "tx-bad"},
                "meterValue": [{"timestamp": NOW, "sampledValue": [{"value": "NaN"}]}],
            },
            "TypeConstraintViolation",
        ),
        (
            "meter value 1e300",
            "TransactionEvent",
            {
                "eventType": "Started",
                "timestamp": NOW,
                "triggerReason": "Authorized",
                "seqNo": 0,
                "transactionInfo": {"transactionId": "tx-bad"},
                "meterValue": [{"timestamp": NOW, "sampledValue": [{"value": 1e300}]}],
            },
            "PropertyConstraintViolation",
        ),
        (
            "meter multiplier 10^999",
            "TransactionEvent",
            {
                "eventType": "Started",
                "timestamp": NOW,
                "triggerReason": "Authorized",
                "seqNo": 0,
                "transactionInfo": {"transactionId": "tx-bad"},
                "meterValue": [
                    {
                        "timestamp": NOW,
                        "sampledValue": [{"value": 1, "unitOfMeasure": {"multiplier": 999}}],
                    }
                ],
            },
            "PropertyConstraintViolation",
        ),
    ],
}
ALL_SCHEMA_CASES = [(version, *case) for version, cases in SCHEMA_CASES.items() for case in cases]


@pytest.mark.parametrize(
    ("version", "action", "payload", "code"),
    [(case[0], *case[2:]) for case in ALL_SCHEMA_CASES],
    ids=[f"{case[0]}-{case[1]}" for case in ALL_SCHEMA_CASES],
)
async def test_payload_a_handler_cannot_take_is_a_client_error_and_nothing_is_stored(
    gateway: Gateway, version: str, action: str, payload: dict[str, Any], code: str
) -> None:
    record("ocpp frames: hand-written", 1)
    ws = await open_station(gateway.ws_url, "FUZZ-2", version)
    try:
        await probe(ws, version, "boot")
        await ws.send(json.dumps([2, "bad", action, payload]))
        answer = await next_frame(ws)
        assert answer[:3] == [4, "bad", code], answer
        assert await probe(ws, version) == []
    finally:
        await ws.close()
    operator = OperatorClient(gateway.base_url, await gateway.state.operator_keys.add("ops"))
    station = (await operator.get("/stations/FUZZ-2")).json()
    assert station["connectors"] == [], station  # no StatusNotification, no transaction stored


async def test_duplicate_unique_ids_are_each_answered(
    station: ClientConnection, subprotocol: str
) -> None:
    """A station resending a CALL (it lost our answer) gets it answered again: OCPP-J asks
    senders for unique ids, and remembering every id of a connection would cost memory."""
    record("ocpp frames: hand-written", 1)
    for _ in range(2):
        await station.send('[2,"same","Heartbeat",{}]')
        answer = await next_frame(station)
        assert answer[:2] == [3, "same"] and "currentTime" in answer[2]
    assert await probe(station, subprotocol) == []


@pytest.mark.parametrize(
    "frame",
    ['[3,"nobody-asked",{}]', '[4,"nobody-asked","GenericError","",{}]', '[3,"short"]'],
    ids=["CALLRESULT", "CALLERROR", "broken CALLRESULT"],
)
async def test_answers_to_no_call_are_ignored(
    station: ClientConnection, subprotocol: str, frame: str
) -> None:
    """OCPP-J answers CALLs only: a reply to nothing is logged and dropped, not answered."""
    record("ocpp frames: hand-written", 1)
    await station.send(frame)
    assert await probe(station, subprotocol) == []


@pytest.mark.parametrize(
    ("message", "close_code"),
    [
        (b"\x00\x01binary", 1003),
        ("x" * (262144 + 1), 1009),
        ("é" * (262144 // 2 + 1), 1009),  # under the limit in characters, over it in bytes
    ],
    ids=["binary", "oversize", "oversize in UTF-8"],
)
async def test_frames_no_station_sends_close_the_connection_with_a_reason(
    gateway: Gateway,
    station: ClientConnection,
    subprotocol: str,
    message: str | bytes,
    close_code: int,
) -> None:
    record("ocpp frames: hand-written", 1)
    await station.send(message)
    with pytest.raises(ConnectionClosed) as closed:
        await next_frame(station)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == close_code
    assert closed.value.rcvd.reason
    await _still_served(gateway, subprotocol)


async def test_invalid_utf8_closes_with_1007(
    gateway: Gateway, station: ClientConnection, subprotocol: str
) -> None:
    record("ocpp frames: hand-written", 1)
    await station.send(b'[2,"u","Heartbeat",{"x":"\xff\xfe"}]', text=True)
    with pytest.raises(ConnectionClosed) as closed:
        await next_frame(station)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
    await _still_served(gateway, subprotocol)


async def test_a_station_over_its_frame_rate_is_slowed_then_closed_with_1008(
    database_url: str,
) -> None:
    record("ocpp frames: hand-written", 1)
    limits = {
        "ocpp_max_frames_per_second": 5.0,
        "ocpp_frame_burst": 3,
        "ocpp_throttle_close_seconds": 0.5,
    }
    async with running(Gateway(database_url, **limits)) as gateway:
        ws = await open_station(gateway.ws_url, "FUZZ-RATE", "ocpp1.6")
        for n in range(20):  # far more than 0.5 s at 5 a second
            await ws.send(json.dumps([2, f"h{n}", "Heartbeat", {}]))
        answered = 0
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await next_frame(ws)
                answered += 1
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert 3 <= answered < 20  # the burst and a few more were served before the close
        await _still_served(gateway, "ocpp1.6", "FUZZ-RATE")


async def test_the_communication_log_keeps_a_station_to_its_bytes_per_minute(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    record("ocpp frames: hand-written", 1)
    async with running(Gateway(database_url, comm_log_station_bytes_per_minute=4000)) as gateway:
        ws = await open_station(gateway.ws_url, "FUZZ-LOG", "ocpp1.6")
        for n in range(40):  # each Heartbeat and its answer: about 100 bytes
            await ws.send(
                json.dumps([2, f"h{n}", "DataTransfer", {"vendorId": "v", "data": "x" * 200}])
            )
            assert (await next_frame(ws))[:2] == [3, f"h{n}"]
        await ws.close()
        await gateway.state.comm_log.flush()
        operator = OperatorClient(gateway.base_url, await gateway.state.operator_keys.add("ops"))
        listed = (await operator.get("/communication_log", station="FUZZ-LOG", limit=500)).json()
        # 80 frames of about 300 bytes a pair went by; 4,000 bytes hold a dozen pairs.
        assert 0 < listed["total"] <= 30, listed["total"]
    reached = [r for r in caplog.records if "reached 4000 bytes this minute" in r.getMessage()]
    assert len(reached) == 1  # one line says so, not one per frame left out


async def _still_served(gateway: Gateway, subprotocol: str, station_id: str = "FUZZ-1") -> None:
    ws = await open_station(gateway.ws_url, station_id, subprotocol)
    try:
        assert await probe(ws, subprotocol) == []
    finally:
        await ws.close()


class _QueuedSocket:
    """Just what LoggedConnection uses of a Starlette WebSocket: frames queued by the test."""

    def __init__(self) -> None:
        self.incoming: list[str] = []
        self.closed: tuple[int, str] | None = None

    async def receive(self) -> dict[str, Any]:
        return {"type": "websocket.receive", "text": self.incoming.pop(0)}

    async def send_text(self, raw: str) -> None:
        pass

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)


async def test_answers_to_our_own_calls_do_not_count_against_the_frame_rate() -> None:
    """We set their pace (one call in flight per station): a station answering many operator
    commands is not flooding. An unsolicited reply counts."""
    record("ocpp frames: hand-written", 1)
    socket = _QueuedSocket()
    # Counted, 50 frames would be throttled at once and closed within a tenth of a second.
    limits = FrameLimits(frames_per_second=20, frame_burst=1, throttle_close_seconds=0.05)
    connection = LoggedConnection(socket, "CP-RATE", CommunicationLog(None), limits)  # type: ignore[arg-type]
    for n in range(50):
        await connection.send(json.dumps([2, f"ours-{n}", "Reset", {"type": "Soft"}]))
        socket.incoming.append(json.dumps([3, f"ours-{n}", {"status": "Accepted"}]))
        assert (await connection.recv()).startswith("[3,")
    assert socket.closed is None
    socket.incoming += [f'[3,"nobody-{n}",{{}}]' for n in range(20)]
    with pytest.raises(WebSocketDisconnect):
        for _ in range(20):
            await connection.recv()
    assert socket.closed is not None and socket.closed[0] == 1008
