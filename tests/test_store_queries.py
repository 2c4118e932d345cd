"""The store's query modules (stations and locations, charging sessions, CDRs, the
communication log, the delivery worker's outbox) on a migrated SQLite file: what each returns,
in which order, with which total. The end-to-end tests cover them again through the HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from chargegate.store import (
    cdr_queries,
    charging_session_queries,
    comm_log_queries,
    db,
    delivery_sql,
    station_queries,
)
from chargegate.store.comm_log_queries import FrameFilter
from chargegate.store.db import SessionFactory
from chargegate.store.delivery_sql import Failure
from chargegate.store.models import (
    Cdr,
    ChargingSession,
    Connector,
    OcppMessage,
    Outbox,
    Party,
    Station,
)
from chargegate.store.units import Units

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


class Store:
    def __init__(self, sessions: SessionFactory, units: Units) -> None:
        self.sessions = sessions
        self.units = units


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'queries.db'}"
    await db.upgrade_async(url)
    engine = db.make_engine(url)
    units = Units(engine)
    sessions = db.make_sessionmaker(engine)
    async with sessions.begin() as s:
        for party_id, code in ((1, "AAA"), (2, "BBB")):
            s.add(
                Party(
                    id=party_id,
                    role="EMSP",
                    country_code="NL",
                    party_id=code,
                    endpoints={},
                    state="REGISTERED",
                    created_at=NOW,
                )
            )
    yield Store(sessions, units)
    await units.close()
    await engine.dispose()


def _station(station_id: str, last_seen: datetime, location_id: str | None = None) -> Station:
    return Station(
        id=station_id,
        location_id=location_id,
        ocpp_version="1.6",
        locked=False,
        first_seen=NOW,
        last_seen=last_seen,
    )


def _connector(station_id: str, connector_id: int) -> Connector:
    return Connector(
        station_id=station_id,
        connector_id=connector_id,
        uuid=f"{station_id}-uuid-{connector_id}",
        locked=False,
        updated_at=NOW,
    )


async def _stations(store: Store) -> None:
    """CP-B (mapped to location LOC-1, seen first), CP-A, CP-C (seen last), each with two
    connectors added in reverse order; CP-C has none."""
    async with store.sessions.begin() as s:
        s.add_all(
            [
                _station("CP-B", NOW, location_id="LOC-1"),
                _station("CP-A", NOW + MINUTE),
                _station("CP-C", NOW + 2 * MINUTE),
            ]
        )
        await s.flush()
        s.add_all([_connector(sid, n) for sid in ("CP-A", "CP-B") for n in (2, 1)])


async def test_locations_are_stations_by_id_filtered_by_last_seen(store: Store) -> None:
    await _stations(store)
    everything = await station_queries.locations_page(
        store.sessions, None, None, 0, 10, published_only=False
    )
    assert [it.station.id for it in everything.items] == ["CP-A", "CP-B", "CP-C"]
    assert everything.total == 3
    assert [c.connector_id for c in everything.items[0].connectors] == [1, 2]
    assert everything.items[2].connectors == []

    # [from, to): the station seen exactly at `to` is left out; the total counts the filter.
    window = await station_queries.locations_page(
        store.sessions, NOW + MINUTE, NOW + 2 * MINUTE, 0, 10, published_only=False
    )
    assert [it.station.id for it in window.items] == ["CP-A"]
    assert window.total == 1

    second = await station_queries.locations_page(
        store.sessions, None, None, 1, 1, published_only=False
    )
    assert [it.station.id for it in second.items] == ["CP-B"]
    assert second.total == 3


async def test_a_location_is_the_mapped_station_else_the_unmapped_one(store: Store) -> None:
    await _stations(store)
    mapped = await station_queries.location(store.sessions, "LOC-1", published_only=False)
    assert mapped is not None and mapped.station.id == "CP-B"
    assert [c.connector_id for c in mapped.connectors] == [1, 2]
    own = await station_queries.location(store.sessions, "CP-A", published_only=False)
    assert own is not None and own.station.id == "CP-A"
    # A mapped station is no longer a Location under its own id.
    assert await station_queries.location(store.sessions, "CP-B", published_only=False) is None
    assert await station_queries.location(store.sessions, "nowhere", published_only=False) is None


async def test_published_only_leaves_unpublished_stations_out(store: Store) -> None:
    await _stations(store)
    async with store.sessions.begin() as s:
        cp_a = await s.get(Station, "CP-A")
        assert cp_a is not None
        cp_a.published = True
    listing = await station_queries.locations_page(
        store.sessions, None, None, 0, 10, published_only=True
    )
    assert [it.station.id for it in listing.items] == ["CP-A"] and listing.total == 1
    assert await station_queries.location(store.sessions, "CP-A", published_only=True)
    assert await station_queries.location(store.sessions, "LOC-1", published_only=True) is None


async def test_operator_stations_by_id_with_their_connectors(store: Store) -> None:
    await _stations(store)
    page = await station_queries.stations_page(store.sessions, 1, 5)
    assert [it.station.id for it in page] == ["CP-B", "CP-C"]
    one = await station_queries.station(store.sessions, "CP-B")
    assert one is not None and [c.connector_id for c in one.connectors] == [1, 2]
    assert await station_queries.station(store.sessions, "CP-X") is None


def _session(pk: int, party_id: int, station_id: str, updated: datetime) -> ChargingSession:
    return ChargingSession(
        pk=pk,
        id=f"S-{pk}",
        station_id=station_id,
        connector_id=1,
        party_id=party_id,
        id_tag="TAG",
        auth_method="COMMAND",
        status="ACTIVE",
        start_date_time=NOW,
        last_updated=updated,
    )


async def _sessions(store: Store) -> None:
    """Party 1: sessions 3, 1 (station gone), 2, 5 (in that order of writing); party 2: 4."""
    await _stations(store)
    async with store.sessions.begin() as s:
        s.add_all(
            [
                _session(3, 1, "CP-A", NOW + 3 * MINUTE),
                _session(1, 1, "CP-GONE", NOW + MINUTE),
                _session(2, 1, "CP-B", NOW + 2 * MINUTE),
                _session(5, 1, "CP-A", NOW + 5 * MINUTE),
                _session(4, 2, "CP-A", NOW + 4 * MINUTE),
            ]
        )


async def test_a_partys_sessions_in_the_order_they_began(store: Store) -> None:
    await _sessions(store)
    page = await charging_session_queries.party_sessions_page(store.sessions, 1, None, None, 0, 10)
    # Session 1's station is gone: left out of the page, still counted.
    assert [it.session.pk for it in page.items] == [2, 3, 5]
    assert page.total == 4
    assert page.items[0].station.id == "CP-B"
    assert sorted(c.connector_id for c in page.items[0].connectors) == [1, 2]

    window = await charging_session_queries.party_sessions_page(
        store.sessions, 1, NOW + 2 * MINUTE, NOW + 5 * MINUTE, 0, 10
    )
    assert [it.session.pk for it in window.items] == [2, 3]
    assert window.total == 2


async def test_one_session_only_for_its_own_party(store: Store) -> None:
    await _sessions(store)
    found = await charging_session_queries.party_session(store.sessions, 2, "S-4")
    assert found is not None and found.station.id == "CP-A"
    assert await charging_session_queries.party_session(store.sessions, 1, "S-4") is None
    assert await charging_session_queries.party_session(store.sessions, 1, "S-1") is None


async def test_a_partys_cdrs_oldest_first_as_the_sessions_they_close(store: Store) -> None:
    await _sessions(store)
    async with store.sessions.begin() as s:
        s.add_all(
            [
                Cdr(id="CDR-b", session_pk=3, party_id=1, created_at=NOW + MINUTE),
                Cdr(id="CDR-a", session_pk=2, party_id=1, created_at=NOW + MINUTE),
                Cdr(id="CDR-0", session_pk=5, party_id=1, created_at=NOW),
                Cdr(id="CDR-x", session_pk=4, party_id=2, created_at=NOW),
            ]
        )
    page = await cdr_queries.party_cdrs_page(store.sessions, 1, None, None, 0, 10)
    # By creation time, then by id.
    assert [it.session.pk for it in page.items] == [5, 2, 3]
    assert page.total == 3
    later = await cdr_queries.party_cdrs_page(store.sessions, 1, NOW + MINUTE, None, 1, 10)
    assert [it.session.pk for it in later.items] == [3]
    assert later.total == 2

    found = await cdr_queries.party_cdr(store.sessions, 2, "CDR-x")
    assert found is not None and found.session.pk == 4 and found.station.id == "CP-A"
    assert await cdr_queries.party_cdr(store.sessions, 1, "CDR-x") is None


def _frame(
    frame_id: int, station_id: str, direction: str, kind: str, unique_id: str, at: datetime
) -> OcppMessage:
    return OcppMessage(
        id=frame_id,
        station_id=station_id,
        direction=direction,
        message_type=kind,
        action="Heartbeat" if kind == "CALL" else None,
        unique_id=unique_id,
        payload={},
        created_at=at,
    )


async def test_frames_newest_first_filtered_and_paired(store: Store) -> None:
    async with store.sessions.begin() as s:
        s.add_all(
            [
                _frame(1, "CP-A", "IN", "CALL", "m1", NOW),
                _frame(2, "CP-A", "OUT", "CALLRESULT", "m1", NOW),
                _frame(3, "CP-B", "IN", "CALL", "m1", NOW + MINUTE),
                _frame(4, "CP-A", "OUT", "CALL", "m2", NOW + 2 * MINUTE),
            ]
        )
    everything = await comm_log_queries.frames_page(store.sessions, FrameFilter(), 0, 10)
    # Newest first; frames written at the same time, the later id first.
    assert [f.id for f in everything.items] == [4, 3, 2, 1]
    assert everything.total == 4

    cp_a = await comm_log_queries.frames_page(
        store.sessions, FrameFilter(station="CP-A", direction="OUT"), 0, 1
    )
    assert [f.id for f in cp_a.items] == [4]
    assert cp_a.total == 2
    by_id = await comm_log_queries.frames_page(
        store.sessions, FrameFilter(message_ids=["m2", "m9"], action="Heartbeat"), 0, 10
    )
    assert [f.id for f in by_id.items] == [4]
    window = await comm_log_queries.frames_page(
        store.sessions, FrameFilter(time_from=NOW, time_to=NOW + 2 * MINUTE), 0, 10
    )
    assert [f.id for f in window.items] == [3, 2, 1]

    exchange = await comm_log_queries.frame_exchange(store.sessions, 2)
    assert exchange is not None
    frame, related = exchange
    assert frame.id == 2
    assert [f.id for f in related] == [1, 2]  # not CP-B's frame with the same message id
    assert await comm_log_queries.frame_exchange(store.sessions, 99) is None


def _outbox(row_id: int, party_id: int, fifo: bool, **values: object) -> Outbox:
    row = Outbox(
        id=row_id,
        kind="SESSION" if fifo else "COMMAND_RESULT",
        party_id=party_id,
        method="POST",
        url=f"https://emsp.example/{row_id}",
        body={"row": row_id},
        ocpi_version="2.2.1",
        fifo=fifo,
        attempts=0,
        next_attempt_at=NOW - MINUTE,
        created_at=NOW - MINUTE,
    )
    for name, value in values.items():
        setattr(row, name, value)
    return row


async def test_claim_leases_due_rows_and_only_each_peers_fifo_head(store: Store) -> None:
    async with store.sessions.begin() as s:
        s.add_all(
            [
                _outbox(1, 1, fifo=True),
                _outbox(2, 1, fifo=True),  # behind row 1 in party 1's queue
                _outbox(3, 2, fifo=True),
                _outbox(4, 1, fifo=False),
                _outbox(5, 1, fifo=False, next_attempt_at=NOW + MINUTE),  # not yet due
                _outbox(6, 1, fifo=False, lease_until=NOW + MINUTE),  # leased elsewhere
                _outbox(7, 1, fifo=False, lease_until=NOW - MINUTE),  # lease lapsed
                _outbox(8, 1, fifo=False, delivered_at=NOW - MINUTE),
                _outbox(9, 2, fifo=False, gave_up_at=NOW - MINUTE),
            ]
        )
    lease = NOW + 5 * MINUTE
    claimed = await delivery_sql.claim_due(store.sessions, NOW, lease, 100)
    assert [row.id for row in claimed] == [1, 3, 4, 7]
    assert claimed[0].body == {"row": 1}
    # Leased now: a second claim at the same moment finds nothing.
    assert await delivery_sql.claim_due(store.sessions, NOW, lease, 100) == []
    # At the lease's end the rows it holds are not yet free; rows 5 and 6 have become due.
    at_lease_end = await delivery_sql.claim_due(store.sessions, lease, lease + MINUTE, 100)
    assert [row.id for row in at_lease_end] == [5, 6]
    # After it, they are, `limit` at a time by id.
    later = await delivery_sql.claim_due(store.sessions, lease + 2 * MINUTE, lease, 2)
    assert [row.id for row in later] == [1, 3]

    parties = await delivery_sql.parties_by_id(store.sessions, {2, 3})
    assert list(parties) == [2]


async def test_outcomes_are_recorded_in_one_unit(store: Store) -> None:
    async with store.sessions.begin() as s:
        s.add_all(
            [
                _outbox(row_id, 1, fifo=False, lease_until=NOW + MINUTE, attempts=2)
                for row_id in (1, 2, 3)
            ]
        )
    retry_at = NOW + 2 * MINUTE
    await store.units.run(
        delivery_sql.record_outcomes,
        [1],
        [
            Failure(2, 3, 0, "HTTP 500", retry_at, give_up=False),
            Failure(3, 3, 0, "HTTP 502", retry_at, give_up=True),
        ],
        NOW,
    )
    async with store.sessions() as s:
        rows = {row.id: row for row in await s.scalars(select(Outbox))}
    delivered, retried, given_up = rows[1], rows[2], rows[3]
    assert delivered.delivered_at is not None and delivered.attempts == 3
    assert delivered.lease_until is None and delivered.last_error is None
    assert retried.attempts == 3 and retried.last_error == "HTTP 500"
    assert retried.lease_until is None and retried.delivered_at is None
    assert retried.gave_up_at is None
    assert retried.next_attempt_at.replace(tzinfo=UTC) == retry_at
    assert given_up.gave_up_at is not None and given_up.last_error == "HTTP 502"
    assert given_up.delivered_at is None
