"""CDRs once per session, reservations as Sessions (2.2.1), reservations the CPO drops."""

from __future__ import annotations

import asyncio

import pytest
from ocpp.v16 import call
from sqlalchemy import func, select

from chargegate.store.models import Cdr

from .conftest import Gateway, StationFactory
from .support.commands import reserve_now, start_session
from .support.emsp import FakeEmsp
from .support.ocpi_client import OcpiClient
from .support.operator import OperatorClient


@pytest.fixture(params=["2.1.1", "2.2.1"])
async def ocpi(request: pytest.FixtureRequest, gateway: Gateway, emsp: FakeEmsp) -> OcpiClient:
    await emsp.register(gateway.base_url, await gateway.add_party(), request.param)
    return OcpiClient(gateway.base_url, emsp)


async def test_full_charge_pushes_session_then_one_cdr(
    ocpi: OcpiClient, gateway: Gateway, stations: StationFactory
) -> None:
    """START_SESSION → StartTransaction → meter values → STOP_SESSION → StopTransaction →
    Session COMPLETED pushed → CDR pushed, once, even when the station repeats its stop."""
    station = await stations("CP-1", auto_transactions=False)
    reference = {"2.1.1": "authorization_id", "2.2.1": "authorization_reference"}[ocpi.version]
    url = ocpi.emsp.response_url("START_SESSION", "start")
    await ocpi.command(
        "START_SESSION", start_session(ocpi.version, url, "CP-1", "CP-1-1", **{reference: "AUTH-9"})
    )
    await ocpi.emsp.wait_for("/start")
    transaction_id = await station.start_transaction(1, "TOKEN-001")
    await station.send_meter_values(1, transaction_id, 1000 + 7500)
    await station.stop_transaction(transaction_id)
    await station.call(
        call.StopTransaction(
            meter_stop=1, timestamp="2026-01-01T00:00:00Z", transaction_id=transaction_id
        )
    )
    [cdr_post] = await ocpi.emsp.wait_for("/cdrs")
    await asyncio.sleep(0.3)
    assert len([r for r in ocpi.emsp.received if "/cdrs" in r.path]) == 1
    cdr = cdr_post.body
    assert cdr_post.method == "POST"
    assert cdr_post.path == f"/ocpi/emsp/{ocpi.version}/cdrs"
    sessions = [r.body for r in ocpi.emsp.received if "/sessions/" in r.path]
    assert sessions[-1]["status"] == "COMPLETED"
    assert cdr["id"] == sessions[-1]["id"]
    assert cdr[reference] == "AUTH-9"
    assert cdr["total_energy"] > 0
    if ocpi.version == "2.2.1":
        assert cdr["auth_method"] == "COMMAND"
        assert cdr["session_id"] == sessions[-1]["id"]
        assert cdr["cdr_location"]["evse_uid"] == "CP-1-1"
    else:
        assert cdr["auth_method"] == "AUTH_REQUEST"
    async with gateway.state.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Cdr)) == 1
    listed = await ocpi.get("cdrs")
    assert [c["id"] for c in listed.json()["data"]] == [cdr["id"]]
    assert listed.headers["X-Total-Count"] == "1"
    one = await ocpi.get(f"cdrs/{cdr['id']}")
    assert one.json()["data"]["id"] == cdr["id"]
    assert (await ocpi.get("cdrs/nope")).status_code == 404
    # Sessions, then the CDR: FIFO per peer.
    order = [r.path.split("/")[4] for r in ocpi.emsp.received if "/commands/" not in r.path]
    assert order[-1] == "cdrs" and set(order[:-1]) == {"sessions"}


async def test_reservation_becomes_a_session_in_221_and_the_charge_continues_it(
    gateway: Gateway, emsp: FakeEmsp, stations: StationFactory
) -> None:
    await emsp.register(gateway.base_url, await gateway.add_party(), "2.2.1")
    ocpi = OcpiClient(gateway.base_url, emsp)
    station = await stations("CP-1", auto_transactions=False)
    url = emsp.response_url("RESERVE_NOW", "res")
    await ocpi.command("RESERVE_NOW", reserve_now("2.2.1", url, "CP-1", "R-1", "CP-1-2"))
    [result] = await emsp.wait_for("/res")
    assert result.body == {"result": "ACCEPTED"}
    [reserved] = await emsp.wait_for("/sessions/")
    assert reserved.body["status"] == "RESERVATION"
    assert reserved.body["evse_uid"] == "CP-1-2"
    ocpp_reservation = station.calls("ReserveNow")[0]["reservationId"]
    await station.start_transaction(2, "TOKEN-001", reservation_id=ocpp_reservation)
    pushes = await emsp.wait_for("/sessions/", count=2)
    assert pushes[-1].body["status"] == "ACTIVE"
    assert pushes[-1].body["id"] == reserved.body["id"]  # the same Session continues


async def test_faulted_reserved_evse_cancels_the_reservation(
    gateway: Gateway, emsp: FakeEmsp, stations: StationFactory
) -> None:
    await emsp.register(gateway.base_url, await gateway.add_party(), "2.2.1")
    ocpi = OcpiClient(gateway.base_url, emsp)
    station = await stations("CP-1", auto_transactions=False)
    url = emsp.response_url("RESERVE_NOW", "faulty")
    await ocpi.command("RESERVE_NOW", reserve_now("2.2.1", url, "CP-1", "R-2", "CP-1-1"))
    await emsp.wait_for("/faulty")
    await station.send_status(1, "Faulted", "GroundFailure")
    results = await emsp.wait_for("/faulty", count=2)
    assert [r.body["result"] for r in results] == ["ACCEPTED", "CANCELED_RESERVATION"]
    assert "Faulted" in results[1].body["message"][0]["text"]
    pushes = await emsp.wait_for("/sessions/", count=2)
    assert [p.body["status"] for p in pushes] == ["RESERVATION", "COMPLETED"]


async def test_operator_lock_cancels_reservations_there(
    gateway: Gateway, emsp: FakeEmsp, stations: StationFactory
) -> None:
    await emsp.register(gateway.base_url, await gateway.add_party(), "2.2.1")
    ocpi = OcpiClient(gateway.base_url, emsp)
    await stations("CP-1")
    url = emsp.response_url("RESERVE_NOW", "locked")
    await ocpi.command("RESERVE_NOW", reserve_now("2.2.1", url, "CP-1", "R-3", "CP-1-1"))
    await emsp.wait_for("/locked")
    operator = OperatorClient(gateway.base_url, await gateway.state.operator_keys.add("ops"))
    assert (await operator.request("PUT", "/stations/CP-1/lock")).status_code == 200
    results = await emsp.wait_for("/locked", count=2)
    assert results[1].body["result"] == "CANCELED_RESERVATION"
    assert "operator" in results[1].body["message"][0]["text"]


async def test_211_reservations_get_no_second_result(
    gateway: Gateway, emsp: FakeEmsp, stations: StationFactory
) -> None:
    await emsp.register(gateway.base_url, await gateway.add_party(), "2.1.1")
    ocpi = OcpiClient(gateway.base_url, emsp)
    station = await stations("CP-1")
    url = emsp.response_url("RESERVE_NOW", "old")
    await ocpi.command("RESERVE_NOW", reserve_now("2.1.1", url, "CP-1", "4", "CP-1-1"))
    await emsp.wait_for("/old")
    await station.send_status(1, "Faulted", "GroundFailure")
    await asyncio.sleep(0.4)
    assert [r.body for r in emsp.received if r.path.endswith("/old")] == [{"result": "ACCEPTED"}]
    assert [r for r in emsp.received if "/sessions/" in r.path] == []
