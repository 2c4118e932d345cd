"""Every command × both OCPI versions × each station answer, end to end over real sockets.

The expected results are the table in docs/decisions.md#asynchronous-results; the 2.1.1
column is the collapse onto CommandResponseType."""

from __future__ import annotations

from typing import Any

import pytest

from chargegate.sim import SimulatedStation16

from .conftest import Gateway, StationFactory
from .support.commands import reserve_now, start_session, unlock
from .support.emsp import FakeEmsp
from .support.ocpi_client import OcpiClient


@pytest.fixture(params=["2.1.1", "2.2.1"])
async def ocpi(request: pytest.FixtureRequest, gateway: Gateway, emsp: FakeEmsp) -> OcpiClient:
    await emsp.register(gateway.base_url, await gateway.add_party(), request.param)
    return OcpiClient(gateway.base_url, emsp)


async def _send_and_wait(ocpi: OcpiClient, command: str, build: Any, ref: str) -> dict[str, Any]:
    url = ocpi.emsp.response_url(command, ref)
    response = await ocpi.command(command, build(url))
    body = response.json()
    assert response.status_code == 200, body
    assert body["status_code"] == 1000, body
    assert body["data"]["result"] == "ACCEPTED", body
    [result] = await ocpi.emsp.wait_for(f"/{ref}")
    return result.body


# The OCPP call each OCPI command becomes.
OCPP_ACTION = {
    "START_SESSION": "RemoteStartTransaction",
    "STOP_SESSION": "RemoteStopTransaction",
    "RESERVE_NOW": "ReserveNow",
    "CANCEL_RESERVATION": "CancelReservation",
    "UNLOCK_CONNECTOR": "UnlockConnector",
}


async def _scripted(
    ocpi: OcpiClient, station: SimulatedStation16, command: str, behaviour: str, build: Any
) -> dict[str, Any]:
    """The CommandResult of `command` (body from `build(response_url)`) once the station is
    scripted to answer its OCPP call with `behaviour`."""
    action = OCPP_ACTION[command]
    station.script.set(action, behaviour)
    return await _send_and_wait(ocpi, command, build, f"{action}-{behaviour}")


def _expect(version: str, v221: str, v211: str) -> str:
    return v221 if version == "2.2.1" else v211


START_CASES = [
    # behaviour, connector status before, 2.2.1 result, 2.1.1 result
    ("accept", "Available", "ACCEPTED", "ACCEPTED"),
    ("reject", "Available", "REJECTED", "REJECTED"),
    ("reject", "Charging", "EVSE_OCCUPIED", "REJECTED"),
    ("reject", "Faulted", "EVSE_INOPERATIVE", "REJECTED"),
    ("call_error", "Available", "FAILED", "REJECTED"),
    ("not_implemented", "Available", "NOT_SUPPORTED", "NOT_SUPPORTED"),
    ("silent", "Available", "TIMEOUT", "TIMEOUT"),
    ("disconnect", "Available", "FAILED", "REJECTED"),
]


@pytest.mark.parametrize(("behaviour", "status", "r221", "r211"), START_CASES)
async def test_start_session_outcomes(
    ocpi: OcpiClient, stations: StationFactory, behaviour: str, status: str, r221: str, r211: str
) -> None:
    station = await stations("CP-1", auto_transactions=False)
    if status != "Available":
        await station.send_status(1, status)
    body = await _scripted(
        ocpi,
        station,
        "START_SESSION",
        behaviour,
        lambda url: start_session(ocpi.version, url, "CP-1", "CP-1-1"),
    )
    assert body["result"] == _expect(ocpi.version, r221, r211)
    if ocpi.version == "2.1.1":
        assert set(body) == {"result"}  # 2.1.1 CommandResponse has no message
    elif r221 != "ACCEPTED":
        assert body["message"][0]["language"] == "en" and body["message"][0]["text"]


# station behaviour, 2.2.1 result, 2.1.1 result
RESERVE_CASES = [
    ("accept", "ACCEPTED", "ACCEPTED"),
    ("reject", "REJECTED", "REJECTED"),
    ("occupied", "EVSE_OCCUPIED", "REJECTED"),
    ("faulted", "EVSE_INOPERATIVE", "REJECTED"),
    ("unavailable", "EVSE_INOPERATIVE", "REJECTED"),
    ("silent", "TIMEOUT", "TIMEOUT"),
]
UNLOCK_CASES = [
    ("accept", "ACCEPTED", "ACCEPTED"),
    ("unlock_failed", "FAILED", "REJECTED"),
    ("not_supported", "NOT_SUPPORTED", "NOT_SUPPORTED"),
    ("call_error", "FAILED", "REJECTED"),
    ("silent", "TIMEOUT", "TIMEOUT"),
]
EVSE_COMMAND_CASES = [("RESERVE_NOW", *case) for case in RESERVE_CASES] + [
    ("UNLOCK_CONNECTOR", *case) for case in UNLOCK_CASES
]


def _evse_command(version: str, command: str, url: str) -> dict[str, Any]:
    """The command for EVSE CP-1-2 (connector 2 of CP-1)."""
    if command == "RESERVE_NOW":
        return reserve_now(version, url, "CP-1", "42", "CP-1-2")
    return unlock(url, "CP-1", "CP-1-2")


@pytest.mark.parametrize(("command", "behaviour", "r221", "r211"), EVSE_COMMAND_CASES)
async def test_reserve_now_and_unlock_connector_outcomes(
    ocpi: OcpiClient,
    stations: StationFactory,
    command: str,
    behaviour: str,
    r221: str,
    r211: str,
) -> None:
    station = await stations("CP-1")
    body = await _scripted(
        ocpi, station, command, behaviour, lambda url: _evse_command(ocpi.version, command, url)
    )
    assert body["result"] == _expect(ocpi.version, r221, r211)
    if command == "RESERVE_NOW":
        sent = station.calls("ReserveNow")[0]
        assert sent["connectorId"] == 2
        assert sent["idTag"] == "TOKEN-001"
        assert isinstance(sent["reservationId"], int)
    else:
        assert station.calls("UnlockConnector") == [{"connectorId": 2}]


async def _active_session(ocpi: OcpiClient, station: SimulatedStation16) -> dict[str, Any]:
    await _send_and_wait(
        ocpi,
        "START_SESSION",
        lambda url: start_session(ocpi.version, url, station.id, f"{station.id}-1"),
        "start-for-stop",
    )
    [pushed] = await ocpi.emsp.wait_for("/sessions/")
    assert pushed.method == "PUT"
    return pushed.body


@pytest.mark.parametrize(("behaviour", "result"), [("accept", "ACCEPTED"), ("reject", "REJECTED")])
async def test_stop_session_outcomes(
    ocpi: OcpiClient, stations: StationFactory, behaviour: str, result: str
) -> None:
    station = await stations("CP-1")
    session = await _active_session(ocpi, station)
    [transaction_id] = list(station.transactions)
    body = await _scripted(
        ocpi,
        station,
        "STOP_SESSION",
        behaviour,
        lambda url: {"response_url": url, "session_id": session["id"]},
    )
    assert body["result"] == result
    [stop] = station.calls("RemoteStopTransaction")
    assert stop == {"transactionId": transaction_id}


@pytest.mark.parametrize(
    ("behaviour", "result"), [("accept", "ACCEPTED"), ("reject", "UNKNOWN_RESERVATION")]
)
async def test_cancel_reservation_outcomes(
    gateway: Gateway, emsp: FakeEmsp, stations: StationFactory, behaviour: str, result: str
) -> None:
    await emsp.register(gateway.base_url, await gateway.add_party(), "2.2.1")
    ocpi = OcpiClient(gateway.base_url, emsp)
    station = await stations("CP-1")
    await _send_and_wait(
        ocpi,
        "RESERVE_NOW",
        lambda url: reserve_now("2.2.1", url, "CP-1", "res-A", "CP-1-1"),
        "reserve-before-cancel",
    )
    body = await _scripted(
        ocpi,
        station,
        "CANCEL_RESERVATION",
        behaviour,
        lambda url: {"response_url": url, "reservation_id": "RES-a"},  # CiString: any case
    )
    assert body["result"] == result
    reserved = station.calls("ReserveNow")[0]["reservationId"]
    assert station.calls("CancelReservation") == [{"reservationId": reserved}]
