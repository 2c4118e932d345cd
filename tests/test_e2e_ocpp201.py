"""OCPP 2.0.1 stations driven as fully as 1.6J ones: every command and outcome, a full charge
with TransactionEvents, reservations the station removes, the operator API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
import websockets
from sqlalchemy import select
from websockets.typing import Subprotocol

from chargegate.domain.clock import utcnow
from chargegate.domain.ids import new_id
from chargegate.sim.station201 import SimulatedStation201
from chargegate.store.models import Command, Party

from .conftest import Gateway
from .support.commands import reserve_now, start_session, unlock
from .support.emsp import FakeEmsp
from .support.ocpi_client import OcpiClient
from .support.operator import OperatorClient
from .support.stations import station_factory

Station201Factory = Callable[..., Awaitable[SimulatedStation201]]


@pytest.fixture
async def stations201(gateway: Gateway) -> AsyncIterator[Station201Factory]:
    async with station_factory(gateway.ws_url, SimulatedStation201, "CS-1") as connect:
        yield connect


@pytest.fixture(params=["2.1.1", "2.2.1"])
async def ocpi(request: pytest.FixtureRequest, gateway: Gateway, emsp: FakeEmsp) -> OcpiClient:
    await emsp.register(gateway.base_url, await gateway.add_party(), request.param)
    return OcpiClient(gateway.base_url, emsp)


async def _result(ocpi: OcpiClient, command: str, body: dict[str, Any], ref: str) -> Any:
    answer = await ocpi.command(command, body)
    assert answer.json()["data"]["result"] == "ACCEPTED", answer.json()
    [result] = await ocpi.emsp.wait_for(f"/{ref}")
    return result.body


def _expect(version: str, r221: str, r211: str) -> str:
    return r221 if version == "2.2.1" else r211


# station behaviour, 2.2.1 result, 2.1.1 result
START_CASES = [
    ("accept", "ACCEPTED", "ACCEPTED"),
    ("reject", "REJECTED", "REJECTED"),
    ("call_error", "FAILED", "REJECTED"),
    ("silent", "TIMEOUT", "TIMEOUT"),
]
UNLOCK_CASES = [
    ("accept", "ACCEPTED", "ACCEPTED"),
    ("unlock_failed", "FAILED", "REJECTED"),
    ("ongoing_transaction", "REJECTED", "REJECTED"),
    ("unknown_connector", "FAILED", "REJECTED"),
]
RESERVE_CASES = [
    ("accept", "ACCEPTED", "ACCEPTED"),
    ("occupied", "EVSE_OCCUPIED", "REJECTED"),
    ("faulted", "EVSE_INOPERATIVE", "REJECTED"),
    ("unavailable", "EVSE_INOPERATIVE", "REJECTED"),
    ("reject", "REJECTED", "REJECTED"),
]
COMMAND_CASES = (
    [("START_SESSION", *case) for case in START_CASES]
    + [("UNLOCK_CONNECTOR", *case) for case in UNLOCK_CASES]
    + [("RESERVE_NOW", *case) for case in RESERVE_CASES]
)

# The OCPP 2.0.1 call each command becomes, and its OCPI body for a response_url.
OCPP_CALL: dict[str, tuple[str, Callable[[str, str], dict[str, Any]]]] = {
    "START_SESSION": (
        "RequestStartTransaction",
        lambda version, url: start_session(version, url, "CS-1", "CS-1-2"),
    ),
    "UNLOCK_CONNECTOR": ("UnlockConnector", lambda version, url: unlock(url, "CS-1", "CS-1-1")),
    "RESERVE_NOW": (
        "ReserveNow",
        lambda version, url: reserve_now(version, url, "CS-1", "12", "CS-1-1"),
    ),
}


@pytest.mark.parametrize(("command", "behaviour", "r221", "r211"), COMMAND_CASES)
async def test_command_outcomes_201(
    ocpi: OcpiClient,
    stations201: Station201Factory,
    command: str,
    behaviour: str,
    r221: str,
    r211: str,
) -> None:
    """Each answer of the station to the command's OCPP call, as the eMSP's CommandResult,
    and the call as the station received it."""
    if command == "START_SESSION":
        station = await stations201(auto_transactions=False)
    else:
        station = await stations201()
    action, build = OCPP_CALL[command]
    station.script.set(action, behaviour)
    url = ocpi.emsp.response_url(command, behaviour)
    body = await _result(ocpi, command, build(ocpi.version, url), behaviour)
    assert body["result"] == _expect(ocpi.version, r221, r211)
    if command == "START_SESSION":
        sent = station.calls("RequestStartTransaction")[0]
        assert sent["evseId"] == 2
        assert sent["idToken"] == {"idToken": "TOKEN-001", "type": "ISO14443"}
        assert isinstance(sent["remoteStartId"], int) and sent["remoteStartId"] > 0
    elif command == "UNLOCK_CONNECTOR":
        assert station.calls("UnlockConnector") == [{"evseId": 1, "connectorId": 1}]
    else:
        sent = station.calls("ReserveNow")[0]
        assert sent["evseId"] == 1 and isinstance(sent["id"], int)


async def test_full_charge_201_pushes_session_and_one_cdr(
    ocpi: OcpiClient, gateway: Gateway, stations201: Station201Factory
) -> None:
    """Remote start → TransactionEvent Started (remoteStartId) → meter values → remote stop →
    Ended → Session and CDR pushed."""
    station = await stations201()
    url = ocpi.emsp.response_url("START_SESSION", "go")
    await _result(ocpi, "START_SESSION", start_session(ocpi.version, url, "CS-1", "CS-1-1"), "go")
    [started] = await ocpi.emsp.wait_for("/sessions/")
    assert started.body["status"] == "ACTIVE"
    [transaction_id] = list(station.transactions)
    await station.send_meter_values(transaction_id, wh=12_000)
    stop_url = ocpi.emsp.response_url("STOP_SESSION", "halt")
    stop = await _result(
        ocpi, "STOP_SESSION", {"response_url": stop_url, "session_id": started.body["id"]}, "halt"
    )
    assert stop["result"] == "ACCEPTED"
    assert station.calls("RequestStopTransaction") == [{"transactionId": transaction_id}]
    [cdr] = await ocpi.emsp.wait_for("/cdrs")
    pushes = await ocpi.emsp.wait_for("/sessions/", count=2)
    assert pushes[-1].body["status"] == "COMPLETED"
    assert cdr.body["id"] == started.body["id"]
    assert cdr.body["total_energy"] >= 11.0
    if ocpi.version == "2.2.1":
        assert cdr.body["auth_method"] == "COMMAND"  # linked by remoteStartId


async def test_a_remote_start_id_links_the_newest_command_that_sent_it(
    gateway: Gateway,
    emsp: FakeEmsp,
    stations201: Station201Factory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """remoteStartIds repeat over time (they carry the time modulo 70 minutes, domain/ids.py):
    the station's transaction links to the newest command that sent its id, not to an older
    one of the same station."""
    await emsp.register(gateway.base_url, await gateway.add_party(), "2.2.1")
    ocpi = OcpiClient(gateway.base_url, emsp)
    monkeypatch.setattr("chargegate.service.command_submission.new_remote_start_id", lambda: 4242)
    day_ago = utcnow() - timedelta(days=1)
    async with gateway.state.sessions.begin() as s:
        party = await s.scalar(select(Party))
        assert party is not None
        s.add(
            Command(
                id=new_id(),
                party_id=party.id,
                ocpi_version="2.2.1",
                type="START_SESSION",
                station_id="CS-1",
                connector_id=1,
                request={},
                response_url="http://127.0.0.1:9/old",
                token_uid="TOKEN-001",
                authorization_reference="OLD-REF",
                state="RESOLVED",
                result="ACCEPTED",
                deadline=day_ago,
                created_at=day_ago,
                resolved_at=day_ago,
                remote_start_id=4242,
            )
        )
    station = await stations201()
    url = emsp.response_url("START_SESSION", "new")
    body = start_session("2.2.1", url, "CS-1", "CS-1-1", authorization_reference="NEW-REF")
    await _result(ocpi, "START_SESSION", body, "new")
    assert station.calls("RequestStartTransaction")[0]["remoteStartId"] == 4242
    [started] = await emsp.wait_for("/sessions/")
    assert started.body["authorization_reference"] == "NEW-REF"


async def test_reservation_removed_by_the_station_is_canceled_reservation(
    gateway: Gateway, emsp: FakeEmsp, stations201: Station201Factory
) -> None:
    await emsp.register(gateway.base_url, await gateway.add_party(), "2.2.1")
    ocpi = OcpiClient(gateway.base_url, emsp)
    station = await stations201()
    url = emsp.response_url("RESERVE_NOW", "kept")
    await _result(ocpi, "RESERVE_NOW", reserve_now("2.2.1", url, "CS-1", "R", "CS-1-2"), "kept")
    [reservation_id] = list(station.reservations)
    await station.remove_reservation(reservation_id)
    results = await emsp.wait_for("/kept", count=2)
    assert [r.body["result"] for r in results] == ["ACCEPTED", "CANCELED_RESERVATION"]


async def test_cancel_reservation_201(
    gateway: Gateway, emsp: FakeEmsp, stations201: Station201Factory
) -> None:
    await emsp.register(gateway.base_url, await gateway.add_party(), "2.2.1")
    ocpi = OcpiClient(gateway.base_url, emsp)
    station = await stations201()
    # Refs that no other path contains ("/c" is in "/commands/…": the reservation's own result
    # would be taken for the cancellation's).
    url = emsp.response_url("RESERVE_NOW", "reserve-r9")
    await _result(
        ocpi, "RESERVE_NOW", reserve_now("2.2.1", url, "CS-1", "R9", "CS-1-1"), "reserve-r9"
    )
    cancel = emsp.response_url("CANCEL_RESERVATION", "cancel-r9")
    body = await _result(
        ocpi, "CANCEL_RESERVATION", {"response_url": cancel, "reservation_id": "R9"}, "cancel-r9"
    )
    assert body["result"] == "ACCEPTED"
    assert (
        station.calls("CancelReservation")[0]["reservationId"]
        == station.calls("ReserveNow")[0]["id"]
    )


async def test_locations_follow_201_evses(ocpi: OcpiClient, stations201: Station201Factory) -> None:
    station = await stations201(evses=3)
    await station.send_status(2, "Occupied")
    location = (await ocpi.get("locations/CS-1")).json()["data"]
    assert [e["uid"] for e in location["evses"]] == ["CS-1-1", "CS-1-2", "CS-1-3"]
    assert [e["status"] for e in location["evses"]] == ["AVAILABLE", "CHARGING", "AVAILABLE"]


async def test_operator_api_on_a_201_station(
    gateway: Gateway, stations201: Station201Factory
) -> None:
    station = await stations201()
    operator = OperatorClient(gateway.base_url, await gateway.state.operator_keys.add("ops"))
    some = await operator.post(
        "/remote_commands/synchronous/CS-1/get_configuration",
        {"keys": ["OCPPCommCtrlr.HeartbeatInterval", "Nope.Nothing"]},
    )
    assert some.status_code == 200, some.text
    assert [k["key"] for k in some.json()["configurationKeys"]] == [
        "OCPPCommCtrlr.HeartbeatInterval"
    ]
    assert some.json()["unknownKeys"] == ["Nope.Nothing"]
    changed = await operator.post(
        "/remote_commands/synchronous/CS-1/change_configurations",
        {"configurations": [{"key": "OCPPCommCtrlr.HeartbeatInterval", "value": "90"}]},
    )
    assert changed.json()["results"][0]["status"] == "Accepted"
    reset = await operator.post("/remote_commands/synchronous/CS-1/reset", {"type": "Soft"})
    assert reset.json()["stationStatus"] in ("Accepted", "Scheduled")
    assert station.calls("Reset")[0]["type"] == "OnIdle"
    everything = await operator.post("/remote_commands/synchronous/CS-1/get_configuration", {})
    assert everything.status_code == 200  # GetBaseReport; the values arrive in NotifyReport
    for _ in range(50):
        stored = await operator.get("/remote_commands/synchronous/CS-1/get_configuration")
        if len(stored.json()["configurationKeys"]) > 5:
            break
        await asyncio.sleep(0.05)
    keys = {k["key"] for k in stored.json()["configurationKeys"]}
    assert "OCPPCommCtrlr.HeartbeatInterval" in keys


async def test_unknown_subprotocol_is_refused_at_the_handshake(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(websockets.exceptions.InvalidHandshake):
        async with websockets.connect(
            f"{gateway.ws_url}/CS-9", subprotocols=[Subprotocol("ocpp1.5")]
        ):
            pass
    assert any("ocpp1.5" in r.getMessage() for r in caplog.records)
