"""Locations from connected stations, Sessions from OCPP transactions, pushed to the eMSP that
started them, and the communication log of every frame."""

from __future__ import annotations

import asyncio
import re

import pytest
from ocpp.v16 import call
from sqlalchemy import select

from chargegate.store.models import OcppMessage, Reservation

from .conftest import Gateway, StationFactory
from .support.commands import reserve_now, start_session
from .support.emsp import FakeEmsp
from .support.ocpi_client import OcpiClient

DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z$")


@pytest.fixture(params=["2.1.1", "2.2.1"])
async def ocpi(request: pytest.FixtureRequest, gateway: Gateway, emsp: FakeEmsp) -> OcpiClient:
    await emsp.register(gateway.base_url, await gateway.add_party(), request.param)
    return OcpiClient(gateway.base_url, emsp)


async def test_locations_list_paginates_and_follows_status(
    ocpi: OcpiClient, stations: StationFactory
) -> None:
    for i in range(3):
        await stations(f"CP-{i}", connectors=2)
    station = await stations("CP-9", connectors=1)
    await station.send_status(1, "Charging")

    first = await ocpi.get("locations", limit=2)
    assert first.headers["X-Total-Count"] == "4"
    assert first.headers["X-Limit"] == "2"
    assert 'rel="next"' in first.headers["Link"] and "offset=2" in first.headers["Link"]
    page = first.json()["data"]
    assert [loc["id"] for loc in page] == ["CP-0", "CP-1"]
    assert [e["uid"] for e in page[0]["evses"]] == ["CP-0-1", "CP-0-2"]
    assert all(e["connectors"][0]["id"] == "1" for e in page[0]["evses"])
    assert DATETIME.match(page[0]["last_updated"])

    last = await ocpi.get("locations", offset=2, limit=2)
    assert "Link" not in last.headers
    one = (await ocpi.get("locations/CP-9")).json()["data"]
    assert one["evses"][0]["status"] == "CHARGING"
    evse = (await ocpi.get("locations/CP-9/CP-9-1")).json()["data"]
    assert evse["uid"] == "CP-9-1"
    missing = await ocpi.get("locations/NOPE")
    assert missing.status_code == 404 and missing.json()["status_code"] == 2003


async def test_remote_started_session_is_pushed_and_stoppable(
    ocpi: OcpiClient, gateway: Gateway, stations: StationFactory
) -> None:
    """START_SESSION → StartTransaction → Session PUT; STOP_SESSION → StopTransaction → PUT."""
    station = await stations("CP-1", connectors=2)
    reference = "auth-ref-1"
    extra = (
        {"authorization_id": reference}
        if ocpi.version == "2.1.1"
        else {"authorization_reference": reference}
    )
    url = ocpi.emsp.response_url("START_SESSION", "start")
    await ocpi.command("START_SESSION", start_session(ocpi.version, url, "CP-1", "CP-1-2", **extra))
    [started] = await ocpi.emsp.wait_for("/sessions/")
    session = started.body
    assert started.method == "PUT"
    assert started.path.endswith(f"/sessions/NL/CGW/{session['id']}")
    assert session["status"] == "ACTIVE"
    if ocpi.version == "2.1.1":
        assert session["authorization_id"] == reference
        assert session["auth_id"] == "NL-EMS-C12345678-X"
        assert DATETIME.match(session["start_datetime"])
    else:
        assert session["authorization_reference"] == reference
        assert session["auth_method"] == "COMMAND"
        assert session["cdr_token"]["uid"] == "TOKEN-001"
        assert session["evse_uid"] == "CP-1-2"
        assert DATETIME.match(session["start_date_time"])
        assert started.headers["ocpi-to-party-id"] == "EMS"

    listed = (await ocpi.get("sessions")).json()["data"]
    assert [s["id"] for s in listed] == [session["id"]]
    one = (await ocpi.get(f"sessions/{session['id']}")).json()["data"]
    assert one["id"] == session["id"]
    assert (await ocpi.get("sessions/unknown")).status_code == 404

    stop_url = ocpi.emsp.response_url("STOP_SESSION", "stop")
    answer = await ocpi.command(
        "STOP_SESSION", {"response_url": stop_url, "session_id": session["id"]}
    )
    assert answer.json()["data"]["result"] == "ACCEPTED"
    [stopped_result] = await ocpi.emsp.wait_for("/stop")
    assert stopped_result.body["result"] == "ACCEPTED"
    pushes = await ocpi.emsp.wait_for("/sessions/", count=2)
    assert pushes[-1].body["status"] == "COMPLETED"
    assert pushes[-1].body["id"] == session["id"]
    stop_call = station.calls("RemoteStopTransaction")[0]
    assert str(stop_call["transactionId"]) in {str(t) for t in station.state.transactions} | {
        str(stop_call["transactionId"])
    }


async def test_duplicate_stop_transaction_changes_nothing(
    ocpi: OcpiClient, gateway: Gateway, stations: StationFactory
) -> None:
    station = await stations("CP-1", auto_transactions=False)
    url = ocpi.emsp.response_url("START_SESSION", "s")
    await ocpi.command("START_SESSION", start_session(ocpi.version, url, "CP-1", "CP-1-1"))
    await ocpi.emsp.wait_for("/s")
    transaction_id = await station.start_transaction(1, "TOKEN-001")
    await ocpi.emsp.wait_for("/sessions/")
    await station.stop_transaction(transaction_id)
    # The station repeats itself (e.g. after a reconnect it resends from its queue).
    await station.call(
        call.StopTransaction(
            meter_stop=999_999, timestamp="2026-01-01T00:00:00Z", transaction_id=transaction_id
        )
    )
    await ocpi.emsp.wait_for("/sessions/", count=2)
    await asyncio.sleep(0.3)
    pushes = [r for r in ocpi.emsp.received if "/sessions/" in r.path]
    assert [p.body["status"] for p in pushes] == ["ACTIVE", "COMPLETED"]


async def test_local_rfid_session_is_not_pushed_to_anyone(
    ocpi: OcpiClient, stations: StationFactory
) -> None:
    station = await stations("CP-1", auto_transactions=False)
    await station.start_transaction(1, "LOCALCARD")
    await asyncio.sleep(0.3)
    assert [r for r in ocpi.emsp.received if "/sessions/" in r.path] == []
    assert (await ocpi.get("sessions")).json()["data"] == []


async def test_reservation_id_is_mapped_and_replaced_in_place(
    ocpi: OcpiClient, gateway: Gateway, stations: StationFactory
) -> None:
    station = await stations("CP-1")
    for ref in ("r1", "r2"):
        url = ocpi.emsp.response_url("RESERVE_NOW", ref)
        await ocpi.command("RESERVE_NOW", reserve_now(ocpi.version, url, "CP-1", "77", "CP-1-1"))
        await ocpi.emsp.wait_for(f"/{ref}")
    other = ocpi.emsp.response_url("RESERVE_NOW", "r3")
    await ocpi.command("RESERVE_NOW", reserve_now(ocpi.version, other, "CP-1", "78", "CP-1-2"))
    await ocpi.emsp.wait_for("/r3")
    ids = [c["reservationId"] for c in station.calls("ReserveNow")]
    assert ids[0] == ids[1] != ids[2]  # same OCPI id → same OCPP id (the station replaces it)
    async with gateway.state.sessions() as s:
        rows = list(await s.scalars(select(Reservation).order_by(Reservation.id)))
    assert [(r.reservation_id, r.status) for r in rows] == [("77", "ACTIVE"), ("78", "ACTIVE")]


async def test_communication_log_has_every_frame_of_a_command(
    ocpi: OcpiClient, gateway: Gateway, stations: StationFactory
) -> None:
    await stations("CP-1")
    url = ocpi.emsp.response_url("UNLOCK_CONNECTOR", "u")
    await ocpi.command(
        "UNLOCK_CONNECTOR",
        {"response_url": url, "location_id": "CP-1", "evse_uid": "CP-1-1", "connector_id": "1"},
    )
    await ocpi.emsp.wait_for("/u")
    await gateway.state.comm_log.flush()
    await asyncio.sleep(0.1)
    async with gateway.state.sessions() as s:
        rows = list(
            await s.scalars(
                select(OcppMessage)
                .where(OcppMessage.action == "UnlockConnector")
                .order_by(OcppMessage.id)
            )
        )
    assert [(r.direction, r.message_type) for r in rows] == [("OUT", "CALL"), ("IN", "CALLRESULT")]
    assert rows[0].unique_id == rows[1].unique_id
    assert rows[0].payload == {"connectorId": 1}
    assert rows[1].payload == {"status": "Unlocked"}
    async with gateway.state.sessions() as s:
        boots = list(
            await s.scalars(select(OcppMessage).where(OcppMessage.action == "BootNotification"))
        )
    assert {(b.direction, b.message_type) for b in boots} == {("IN", "CALL"), ("OUT", "CALLRESULT")}
