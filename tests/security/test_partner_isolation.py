"""Partners are isolated: one test per command aimed at another party's
object, end to end with two eMSPs on one gateway, each with a positive control showing the
owner can still act on it (so "nothing happened" is not a test that could never fail).

Already covered elsewhere and not repeated here: an unknown session (test_e2e_refusals.py
test_unknown_session_is_unknown_session), an unknown reservation
(test_cancel_of_unknown_reservation_is_accepted_then_unknown_reservation), token A on a
functional module (test_token_a_is_not_accepted_on_functional_modules), and the service-level
rule for a foreign STOP_SESSION (tests/service/test_command_decisions.py).
UNLOCK_CONNECTOR names an EVSE, not an object a party owns, so it has no foreign case
(docs/security.md#registration-tokens)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from chargegate.store.models import Reservation

from ..conftest import Gateway, StationFactory
from ..support.commands import reserve_now, start_session
from ..support.emsp import FakeEmsp
from ..support.ocpi_client import OcpiClient
from ..support.servers import running

VERSION = "2.2.1"


@pytest.fixture
async def owner(gateway: Gateway, emsp: FakeEmsp) -> OcpiClient:
    await emsp.register(gateway.base_url, await gateway.add_party(), VERSION)
    return OcpiClient(gateway.base_url, emsp)


@pytest.fixture
async def stranger(gateway: Gateway) -> AsyncIterator[OcpiClient]:
    async with running(FakeEmsp(party_id="OTH")) as other:
        await other.register(gateway.base_url, await gateway.add_party(party_id="OTH"), VERSION)
        yield OcpiClient(gateway.base_url, other)


async def _result(client: OcpiClient, command: str, body_of: object, ref: str) -> str:
    """Send a command with a response_url of the client's own; the CommandResult's value."""
    url = client.emsp.response_url(command, ref)
    assert callable(body_of)
    response = await client.command(command, body_of(url))
    assert response.json()["data"]["result"] == "ACCEPTED", response.json()
    [result] = await client.emsp.wait_for(f"/{ref}")
    value: str = result.body["result"]
    return value


async def test_stop_session_of_another_partys_session_is_rejected(
    owner: OcpiClient, stranger: OcpiClient, stations: StationFactory
) -> None:
    station = await stations("CP-1", auto_transactions=False)
    started = await _result(
        owner, "START_SESSION", lambda url: start_session(VERSION, url, "CP-1", "CP-1-1"), "st"
    )
    assert started == "ACCEPTED"
    await station.start_transaction(1, "TOKEN-001")
    [active] = await owner.emsp.wait_for("/sessions/")
    session_id = active.body["id"]

    url = stranger.emsp.response_url("STOP_SESSION", "foreign-stop")
    refused = await stranger.command(
        "STOP_SESSION", {"response_url": url, "session_id": session_id}
    )
    assert refused.json()["data"]["result"] == "REJECTED"
    assert station.calls("RemoteStopTransaction") == []

    stopped = await _result(
        owner,
        "STOP_SESSION",
        lambda url: {"response_url": url, "session_id": session_id},
        "own-stop",
    )
    assert stopped == "ACCEPTED"
    assert len(station.calls("RemoteStopTransaction")) == 1  # the owner's, only
    assert not [r for r in stranger.emsp.received if "/sessions/" in r.path]


async def test_cancel_reservation_of_another_partys_reservation_is_unknown_and_it_stays(
    gateway: Gateway, owner: OcpiClient, stranger: OcpiClient, stations: StationFactory
) -> None:
    station = await stations("CP-1", auto_transactions=False)
    reserved = await _result(
        owner,
        "RESERVE_NOW",
        lambda url: reserve_now(VERSION, url, "CP-1", "R-1", "CP-1-2"),
        "reserve",
    )
    assert reserved == "ACCEPTED"

    foreign = await _result(
        stranger,
        "CANCEL_RESERVATION",
        lambda url: {"response_url": url, "reservation_id": "R-1"},
        "foreign-cancel",
    )
    assert foreign == "UNKNOWN_RESERVATION"
    assert station.calls("CancelReservation") == []
    async with gateway.state.sessions() as s:
        [kept] = list(await s.scalars(select(Reservation)))
    assert kept.status == "ACTIVE"

    own = await _result(
        owner,
        "CANCEL_RESERVATION",
        lambda url: {"response_url": url, "reservation_id": "R-1"},
        "own-cancel",
    )
    assert own == "ACCEPTED"
    assert len(station.calls("CancelReservation")) == 1


async def test_reserve_now_with_another_partys_reservation_id_does_not_replace_it(
    gateway: Gateway, owner: OcpiClient, stranger: OcpiClient, stations: StationFactory
) -> None:
    """OCPI: RESERVE_NOW with a known reservation_id replaces that reservation, but only the
    caller's own: the same id from another party is another reservation."""
    station = await stations("CP-1", auto_transactions=False)
    first = await _result(
        owner, "RESERVE_NOW", lambda url: reserve_now(VERSION, url, "CP-1", "R-1", "CP-1-2"), "a"
    )
    second = await _result(
        stranger,
        "RESERVE_NOW",
        lambda url: reserve_now(VERSION, url, "CP-1", "R-1", "CP-1-1", uid="OTHER-TOKEN"),
        "b",
    )
    assert (first, second) == ("ACCEPTED", "ACCEPTED")
    ocpp_ids = [c["reservationId"] for c in station.calls("ReserveNow")]
    assert len(set(ocpp_ids)) == 2  # two reservations at the station, not one moved
    async with gateway.state.sessions() as s:
        rows = list(await s.scalars(select(Reservation).order_by(Reservation.id)))
    assert [(r.connector_id, r.status) for r in rows] == [(2, "ACTIVE"), (1, "ACTIVE")]
    assert rows[0].party_id != rows[1].party_id


async def test_start_session_on_an_evse_another_party_reserved_is_rejected(
    owner: OcpiClient, stranger: OcpiClient, stations: StationFactory
) -> None:
    """The reservation's EVSE takes only the reserving token (the station enforces it, as OCPP
    says): another party's START_SESSION there ends EVSE_OCCUPIED and starts nothing."""
    station = await stations("CP-1", auto_transactions=False)
    reserved = await _result(
        owner,
        "RESERVE_NOW",
        lambda url: reserve_now(VERSION, url, "CP-1", "R-1", "CP-1-2"),
        "reserve",
    )
    assert reserved == "ACCEPTED"
    foreign = await _result(
        stranger,
        "START_SESSION",
        lambda url: start_session(VERSION, url, "CP-1", "CP-1-2", uid="OTHER-TOKEN"),
        "foreign-start",
    )
    assert foreign == "EVSE_OCCUPIED"
    assert station.state.transaction_on(2) is None
    assert not [r for r in stranger.emsp.received if "/sessions/" in r.path]
