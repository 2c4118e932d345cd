"""The command service's decisions against fakes of its ports (tests/service/fakes.py): the
synchronous answers, the mapping of a station's answer to the result, one outcome per command,
and the TIMEOUT sweep. No database, no server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from chargegate.domain import commands as dc
from chargegate.domain import station_calls as sc
from chargegate.domain.commands import CommandReply, CommandResponseType, Peer
from chargegate.domain.station_calls import Outcome, StationReply
from chargegate.service.commands import CommandService
from chargegate.service.parties import PartyCache
from chargegate.settings import Settings

from .fakes import (
    Delivery,
    FakeCommandStore,
    FakeParty,
    FakeReservation,
    FakeRouter,
    FakeSession,
    FakeWire,
)

PEER = Peer(id=7, country_code="NL", party_id="EMS", ocpi_version="2.2.1")
PEER_211 = Peer(id=7, country_code="NL", party_id="EMS", ocpi_version="2.1.1")
TOKEN = dc.Token(uid="04A1", type="RFID", contract_id="NL-EMS-C1")
URL = "https://emsp.example.com/commands/1"


class World:
    def __init__(self, *, deliver_now: bool = True) -> None:
        self.store = FakeCommandStore()
        self.store.parties[7] = FakeParty(7, "2.2.1")
        self.router = FakeRouter()
        self.delivery = Delivery()
        self.service = CommandService(
            Settings(),
            self.store,
            self.router,
            FakeWire(),
            self.delivery.notify,
            PartyCache(self.store.load_party),
            self.delivery.deliver_now if deliver_now else None,
        )

    def station(self, station_id: str = "CP-1", *connectors: int, online: bool = True) -> None:
        self.store.add_station(station_id, *(connectors or (1,)))
        if online:
            self.router.online.add(station_id)

    async def submit(self, request: dc.CommandRequest, peer: Peer = PEER) -> CommandReply:
        return await self.service.submit(peer, request, URL, "corr-1")

    async def outcome(self) -> tuple[str, str, bool]:
        """The next outcome the service asked the store to record."""
        return await asyncio.wait_for(self.store.outcomes.get(), 1)

    def result_of(self, command_id: str | None) -> str | None:
        assert command_id is not None
        result: str | None = self.store.commands[command_id]["result"]
        return result


def start(evse_uid: str | None = "CP-1-1", location: str = "CP-1") -> dc.StartSession:
    return dc.StartSession(location_id=location, token=TOKEN, evse_uid=evse_uid)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    world = World()
    yield world
    await world.service.stop()


# ---- answered at once -------------------------------------------------------------------------


async def test_unknown_location_and_evse_are_rejected_with_2003(world: World) -> None:
    world.station()
    for request, words in (
        (start(location="NOPE"), "unknown location"),
        (start(evse_uid="CP-1-9"), "unknown EVSE"),
    ):
        reply = await world.submit(request)
        assert (reply.result, reply.ocpi_status) == (CommandResponseType.REJECTED, 2003)
        assert reply.message is not None and words in reply.message
    assert world.store.commands == {} and world.router.calls == []


async def test_an_unpublished_location_is_answered_as_an_unknown_one(world: World) -> None:
    world.station()
    world.store.stations["CP-1"].published = False
    unknown = await world.submit(start(location="NOPE"))
    for request in (
        start(),
        dc.ReserveNow(
            location_id="CP-1",
            token=TOKEN,
            expiry_date=datetime.now(UTC) + timedelta(hours=1),
            reservation_id="R1",
        ),
        dc.UnlockConnector(location_id="CP-1", evse_uid="CP-1-1", connector_id="1"),
    ):
        reply = await world.submit(request)
        assert (reply.result, reply.ocpi_status) == (unknown.result, unknown.ocpi_status)
        assert reply.message == "unknown location 'CP-1'"
    assert world.store.commands == {} and world.router.calls == []


async def test_an_evse_its_published_location_does_not_show_is_unknown(world: World) -> None:
    world.station("CP-1", 1, 2)
    world.store.stations["CP-1"].site = {"address": "Damrak 1"}
    world.store.connector("CP-1", 1).spec = {"standard": "IEC_62196_T2"}
    reply = await world.submit(start(evse_uid="CP-1-2"))
    assert (reply.result, reply.ocpi_status) == (CommandResponseType.REJECTED, 2003)
    assert reply.message == "unknown EVSE 'CP-1-2' at location 'CP-1'"
    assert (await world.submit(start(evse_uid="CP-1-1"))).result is CommandResponseType.ACCEPTED


async def test_offline_station_is_rejected(world: World) -> None:
    world.station(online=False)
    reply = await world.submit(start())
    assert reply.result is CommandResponseType.REJECTED
    assert reply.message == "station offline: CP-1 is not connected"
    assert world.store.commands == {}


async def test_locked_station_or_connector_is_rejected(world: World) -> None:
    world.station()
    world.store.connector("CP-1", 1).locked = True
    reply = await world.submit(start())
    assert (reply.result, reply.message) == (
        CommandResponseType.REJECTED,
        "EVSE is locked by the operator",
    )
    world.store.connector("CP-1", 1).locked = False
    world.store.stations["CP-1"].locked = True
    assert (await world.submit(start())).result is CommandResponseType.REJECTED
    assert world.store.commands == {}


async def test_unknown_session_is_unknown_session(world: World) -> None:
    world.station()
    reply = await world.submit(dc.StopSession("no-such-session"))
    assert reply.result is CommandResponseType.UNKNOWN_SESSION
    world.store.sessions["S1"] = FakeSession("S1", 8, "CP-1", 1, "11")  # another party's
    reply = await world.submit(dc.StopSession("S1"))
    assert (reply.result, reply.message) == (
        CommandResponseType.REJECTED,
        "session does not belong to this party",
    )
    assert world.store.commands == {}


async def test_gireve_start_without_evse_uid_is_rejected_with_2001(world: World) -> None:
    world.station()
    gireve = Peer(id=7, country_code="FR", party_id="107", ocpi_version="2.1.1", profile="gireve")
    reply = await world.submit(start(evse_uid=None), gireve)
    assert (reply.result, reply.ocpi_status) == (CommandResponseType.REJECTED, 2001)


async def test_a_token_longer_than_an_ocpp16_id_tag_is_rejected(world: World) -> None:
    world.station()
    long_token = dc.Token(uid="X" * 21, type="RFID", contract_id="C")
    reply = await world.submit(dc.StartSession(location_id="CP-1", token=long_token))
    assert reply.result is CommandResponseType.REJECTED
    assert reply.message is not None and "at most 20" in reply.message


async def test_unknown_reservation_is_accepted_then_resolved_unknown_reservation(
    world: World,
) -> None:
    reply = await world.submit(dc.CancelReservation("R-none"))
    assert reply.result is CommandResponseType.ACCEPTED
    assert world.result_of(reply.command_id) == "UNKNOWN_RESERVATION"
    assert world.router.calls == []
    [row] = world.store.outbox
    assert row.body["result"] == "UNKNOWN_RESERVATION"


# ---- the station's answer ---------------------------------------------------------------------


async def test_accepted_start_is_stored_sent_and_its_result_delivered_at_once(
    world: World,
) -> None:
    world.station()
    reply = await world.submit(start())
    assert reply.result is CommandResponseType.ACCEPTED and reply.command_id is not None
    stored = world.store.commands[reply.command_id]
    assert (stored["state"], stored["station_id"], stored["token_uid"]) == (
        "PENDING",
        "CP-1",
        "04A1",
    )
    assert await world.outcome() == (reply.command_id, "ACCEPTED", True)
    [(station_id, request, _)] = world.router.calls
    assert station_id == "CP-1" and isinstance(request, sc.RemoteStart)
    assert request.remote_start_id == stored["remote_start_id"]
    [row] = world.store.outbox
    assert (row.url, row.correlation_id, row.command_id) == (URL, "corr-1", reply.command_id)
    assert row.body == {"version": "2.2.1", "result": "ACCEPTED", "message": ""}
    assert row.lease_until is not None  # this node sends it itself
    assert (await world.delivery.next_sent()).id == row.id
    [(_, party)] = world.delivery.sent
    assert party == FakeParty(7, "2.2.1")
    assert world.delivery.wakeups == 0


async def test_without_deliver_now_the_worker_is_woken() -> None:
    world = World(deliver_now=False)
    world.station()
    reply = await world.submit(start())
    await world.outcome()
    assert world.delivery.sent == [] and world.delivery.wakeups == 1
    [row] = world.store.outbox
    assert row.command_id == reply.command_id and row.lease_until is None


@pytest.mark.parametrize(
    ("answer", "evse_status", "result"),
    [
        (StationReply(Outcome.REJECTED, "Rejected"), "Charging", "EVSE_OCCUPIED"),
        (StationReply(Outcome.REJECTED, "Rejected"), "Faulted", "EVSE_INOPERATIVE"),
        (StationReply(Outcome.REJECTED, "Rejected"), "Available", "REJECTED"),
        (StationReply(Outcome.CALL_ERROR, error_code="NotImplemented"), None, "NOT_SUPPORTED"),
        (StationReply(Outcome.CONNECTION_LOST), None, "FAILED"),
        (StationReply(Outcome.TIMEOUT), None, "TIMEOUT"),
    ],
)
async def test_the_station_answer_maps_to_the_result(
    world: World, answer: StationReply, evse_status: str | None, result: str
) -> None:
    world.station()
    world.store.connector("CP-1", 1).ocpp_status = evse_status
    world.router.replies["CP-1"] = answer
    reply = await world.submit(start())
    assert await world.outcome() == (reply.command_id, result, True)
    assert world.store.outbox[0].body["result"] == result


async def test_a_211_command_gets_its_result_in_211_form(world: World) -> None:
    world.station()
    reply = await world.submit(start(), PEER_211)
    await world.outcome()
    [row] = world.store.outbox
    assert row.body["version"] == "2.1.1" and row.command_id == reply.command_id
    assert row.ocpi_version == "2.2.1"  # the peer's current version


async def test_reserve_now_follows_the_answer_and_keeps_its_station_id(world: World) -> None:
    world.station()
    expiry = datetime.now(UTC) + timedelta(hours=1)
    reserve = dc.ReserveNow("CP-1", TOKEN, expiry, "R-1", evse_uid="CP-1-1")
    await world.submit(reserve)
    await world.outcome()
    [reservation] = world.store.reservations
    assert reservation.status == "ACTIVE"
    world.router.replies["CP-1"] = StationReply(Outcome.REJECTED, "Rejected")
    again = await world.submit(reserve)  # the same reservation_id replaces it
    await world.outcome()
    assert [r.status for r in world.store.reservations] == ["FAILED"]
    assert reservation.command_id == again.command_id
    calls = [request for _, request, _ in world.router.calls]
    assert [c.reservation_id for c in calls if isinstance(c, sc.Reserve)] == [1, 1]


async def test_an_accepted_cancel_cancels_the_reservation(world: World) -> None:
    world.station()
    world.store.reservations.append(
        FakeReservation(7, "CP-1", "R-2", "CP-1", 1, 4, datetime.now(UTC), "c-0", URL, "ACTIVE")
    )
    reply = await world.submit(dc.CancelReservation("R-2"))
    assert reply.result is CommandResponseType.ACCEPTED
    await world.outcome()
    [(_, request, _)] = world.router.calls
    assert request == sc.CancelReservation(4)
    assert world.store.reservations[0].status == "CANCELLED"


async def test_stop_session_sends_remote_stop_for_its_transaction(world: World) -> None:
    world.station()
    world.store.sessions["S1"] = FakeSession("S1", 7, "CP-1", 1, "11")
    reply = await world.submit(dc.StopSession("S1"))
    assert reply.result is CommandResponseType.ACCEPTED
    await world.outcome()
    assert world.router.calls[0][1] == sc.RemoteStop("11")


# ---- one outcome, and the TIMEOUT sweep ------------------------------------------------------


async def test_a_late_answer_after_timeout_changes_nothing(world: World) -> None:
    world.station()
    world.router.hold = asyncio.Event()
    reply = await world.submit(start())
    assert reply.command_id is not None
    await asyncio.wait_for(world.router.called.wait(), 1)
    world.store.commands[reply.command_id]["deadline"] = datetime.now(UTC) - timedelta(seconds=1)
    assert await world.service.resolve_expired() == 1
    assert await world.outcome() == (reply.command_id, "TIMEOUT", True)
    assert (await world.delivery.next_sent()).body["result"] == "TIMEOUT"
    world.router.hold.set()  # the station answers after all
    assert await world.outcome() == (reply.command_id, "ACCEPTED", False)
    assert world.result_of(reply.command_id) == "TIMEOUT"
    assert [row.body["result"] for row in world.store.outbox] == ["TIMEOUT"]
    await world.service.stop()
    assert len(world.delivery.sent) == 1


async def test_the_sweep_times_out_only_pending_commands_past_their_deadline(
    world: World,
) -> None:
    world.station()
    world.router.hold = asyncio.Event()  # no station answers
    late = await world.submit(start())
    due = await world.submit(start())
    assert late.command_id is not None and due.command_id is not None
    world.store.commands[late.command_id]["deadline"] = datetime.now(UTC) - timedelta(seconds=1)
    assert await world.service.resolve_expired() == 1
    assert world.result_of(late.command_id) == "TIMEOUT"
    assert world.store.commands[due.command_id]["state"] == "PENDING"
    [row] = world.store.outbox
    assert row.body["message"] == "no answer from the charge point before the deadline"
    assert await world.service.resolve_expired() == 0  # resolved once
    await world.service.stop()
