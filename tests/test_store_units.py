"""The command hot path's units of work (store/units.py, store/command_sql.py) on SQLite, where
they run as raw sqlite3 on the connection's thread, and on PostgreSQL, where they run through
SQLAlchemy: the same rows either way, as the ORM writes and reads them, and nothing half-written
when a unit fails."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import bindparam, event, func, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from chargegate.delivery.client import PeerClient
from chargegate.delivery.worker import DeliveryWorker
from chargegate.domain.clock import as_utc
from chargegate.domain.commands import CommandState
from chargegate.service.outbox import outbox_values
from chargegate.service.ports import ReservationFollows, Reserving, ResultRow
from chargegate.settings import Settings
from chargegate.store import comm_log, command_sql, db, station_sql
from chargegate.store import units as units_module
from chargegate.store.command_sql import Decision
from chargegate.store.command_store import SqlCommandStore
from chargegate.store.compiled_statement import CompiledStatement
from chargegate.store.models import (
    PENDING_STATE,
    ChargingSession,
    Command,
    Connector,
    OcppMessage,
    Outbox,
    Party,
    Reservation,
    Station,
)
from chargegate.store.units import Executor, Units, atomic_alone, bulk

NOW = datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC)
_DUPLICATE = re.compile(r"(?i)unique|duplicate")
# Units' statements are module constants (compiled ones are cached by the statement's id).
_INSERT_COMMANDS = command_sql.commands.insert()


class Store:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions: async_sessionmaker[AsyncSession] = db.make_sessionmaker(engine)
        self.units = Units(engine)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    await db.upgrade_async(database_url)
    engine = db.make_engine(database_url)
    store = Store(engine)
    async with store.sessions.begin() as s:
        s.add(
            Party(
                id=7,
                role="EMSP",
                country_code="NL",
                party_id="EMS",
                ocpi_version="2.1.1",
                endpoints={},
                state="REGISTERED",
                created_at=NOW,
            )
        )
        for station_id, location_id in (("CP-1", None), ("CP-2", "CP-1"), ("cp-3", None)):
            s.add(
                Station(
                    id=station_id,
                    location_id=location_id,
                    ocpp_version="1.6",
                    first_seen=NOW,
                    last_seen=NOW,
                )
            )
        await s.flush()
        for station_id, number, evse_uid in (
            ("CP-1", 1, None),
            ("CP-1", 2, "EVSE-A"),
            ("CP-2", 1, None),
        ):
            s.add(
                Connector(
                    station_id=station_id,
                    connector_id=number,
                    uuid=str(uuid.uuid4()),
                    evse_uid=evse_uid,
                    updated_at=NOW,
                )
            )
    yield store
    await store.units.close()
    await engine.dispose()


def _command(command_id: str) -> dict[str, Any]:
    return {
        "id": command_id,
        "party_id": 7,
        "ocpi_version": "2.1.1",
        "type": "START_SESSION",
        "station_id": "CP-1",
        "connector_id": 1,
        "request": {"location_id": "CP-1", "token": {"uid": "04A1", "valid": True}},
        "response_url": "https://emsp.example.com/r/1",
        "correlation_id": None,
        "authorization_reference": "auth-1",
        "token_uid": "04A1",
        "remote_start_id": 17,
        "state": "PENDING",
        "deadline": NOW + timedelta(seconds=30),
        "created_at": NOW,
        "result": None,
        "message": None,
        "station_status": None,
        "resolved_at": None,
    }


def _decision(command_id: str, result: str = "ACCEPTED") -> Decision:
    return Decision(
        command_id=command_id,
        pending="PENDING",
        state="RESOLVED",
        result=result,
        message=None,
        station_status="Accepted",
        now=NOW + timedelta(seconds=1),
    )


def _result_row(command: Any, party_version: str | None) -> dict[str, Any]:
    return outbox_values(
        kind="COMMAND_RESULT",
        party_id=command.party_id,
        party_version=party_version,
        method="POST",
        url=command.response_url,
        body={"type": command.type, "command_id": command.id},
        correlation_id=command.correlation_id,
        command_id=command.id,
        lease_seconds=30,
    )


async def test_a_recorded_and_decided_command_reads_back_as_the_orm_writes_it(
    store: Store,
) -> None:
    # Sent in 2.2.1 by a peer now registered with 2.1.1: the result goes the party's way.
    await store.units.run(command_sql.record_command, {**_command("c-1"), "ocpi_version": "2.2.1"})
    decided = await store.units.run(command_sql.decide, _decision("c-1"), _result_row)
    assert decided is not None
    # The party's version came from its row (not the command's), in the same statement.
    assert decided.command.ocpi_version == "2.2.1"
    assert decided.outbox["ocpi_version"] == "2.1.1"

    async with store.sessions() as s:
        command = await s.get(Command, "c-1")
        outbox = await s.get(Outbox, decided.outbox_id)
    assert command is not None and outbox is not None
    assert command.resolved_at is not None and outbox.lease_until is not None
    assert as_utc(command.created_at) == NOW
    assert as_utc(command.resolved_at) == NOW + timedelta(seconds=1)
    assert (command.state, command.station_status, command.remote_start_id) == (
        "RESOLVED",
        "Accepted",
        17,
    )
    assert outbox.body == {"type": "START_SESSION", "command_id": "c-1"}
    assert outbox.fifo is False and outbox.attempts == 0 and outbox.delivered_at is None
    assert as_utc(outbox.lease_until) > as_utc(outbox.created_at)


async def test_a_resolved_command_reads_back_whole_and_typed(store: Store) -> None:
    await store.units.run(command_sql.record_command, _command("c-w"))
    command = await store.units.run(command_sql.resolve_command, _decision("c-w"))
    assert command is not None
    # Typed values, not SQLite's stored text.
    assert command.request == _command("c-w")["request"]
    assert as_utc(command.deadline) == NOW + timedelta(seconds=30)
    assert as_utc(command.resolved_at) == NOW + timedelta(seconds=1)
    assert (command.result, command.party_version) == ("ACCEPTED", "2.1.1")


async def _plan(s: AsyncSession, statement: Any) -> str:
    """The engine's plan for a statement as the store runs it: with bound parameters, and on
    PostgreSQL as a prepared statement's generic plan (asyncpg prepares every statement, and
    PostgreSQL then plans once for any value)."""
    conn = await s.connection()
    compiled = statement.compile(dialect=conn.dialect)
    params = tuple(compiled.params[name] for name in compiled.positiontup or ())
    if conn.dialect.name == "sqlite":
        rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params)
        return "\n".join(str(tuple(row)) for row in rows)
    # A few rows would rather be read whole: ask which index the plan can take.
    await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    await conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
    await conn.exec_driver_sql(f"PREPARE planned AS {compiled}")
    try:
        nulls = ", ".join("NULL" for _ in params)
        rows = await conn.exec_driver_sql(f"EXPLAIN EXECUTE planned({nulls})")
        return "\n".join(str(tuple(row)) for row in rows)
    finally:
        await conn.exec_driver_sql("DEALLOCATE planned")


async def test_the_sweeper_finds_expired_pending_commands_through_their_own_index(
    store: Store,
) -> None:
    for command_id, deadline in (
        ("c-late", NOW - timedelta(seconds=1)),
        ("c-due", NOW + timedelta(seconds=30)),
        ("c-done", NOW - timedelta(seconds=1)),
    ):
        await store.units.run(
            command_sql.record_command, {**_command(command_id), "deadline": deadline}
        )
    assert await store.units.run(command_sql.resolve_command, _decision("c-done"))
    expired = command_sql.expired_commands(NOW)
    async with store.sessions() as s:
        assert [tuple(row) for row in await s.execute(expired)] == [("c-late", "START_SESSION")]
        plan = await _plan(s, expired)
    # The partial index: only a literal state matches its predicate, on both engines.
    assert "ix_commands_pending_deadline" in plan, plan
    assert PENDING_STATE == f"'{CommandState.PENDING.value}'"  # the literal is the state


async def test_the_target_is_one_statement_reaching_the_connector_by_its_station(
    store: Store,
) -> None:
    """A command's station and connector come back from one statement; the connector is
    reached through its primary key from the station found, never by reading the table."""
    statements: list[Any] = []

    class Recording:
        def rows(self, statement: Any, values: Any) -> list[Any]:
            statements.append(statement)
            return []

    command_sql.find_target(cast(Executor, Recording()), "CP-1", "CP-2-1", False)
    assert statements == [command_sql._TARGET[False, False, True]]
    statements.clear()
    command_sql.find_target(cast(Executor, Recording()), "CP-1", "CP-2-1", True)
    assert len(statements) == 2  # the exact match, then the case-insensitive fallback
    async with store.sessions() as s:
        plan = await _plan(s, command_sql._TARGET[False, False, True])
    if store.engine.dialect.name == "sqlite":
        assert "SEARCH connectors USING INDEX sqlite_autoindex_connectors_1" in plan, plan
        assert "SCAN" not in plan, plan
    else:
        assert "connectors_pkey" in plan, plan


async def test_resolving_reads_the_command_by_its_primary_key_on_a_table_never_analyzed(
    store: Store,
) -> None:
    """On PostgreSQL, with an index on (state, deadline), the resolving UPDATE's generic plan
    took that index before the table was first analyzed, and read every pending command to
    find one (docs/performance.md#pending-deadline-index). The pending-only index cannot
    serve `state = $2`."""
    await store.units.run(command_sql.record_command, _command("c-k"))
    async with store.sessions() as s:
        plan = await _plan(s, command_sql._RESOLVE_FOR_RESULT)
        await s.rollback()
    key = "commands_pkey" if store.engine.dialect.name == "postgresql" else "autoindex"
    assert key in plan and "ix_commands_pending_deadline" not in plan, plan


async def test_what_a_unit_wrote_is_committed(store: Store, database_url: str) -> None:
    await store.units.run(command_sql.record_command, _command("c-0"))
    assert await store.units.run(command_sql.decide, _decision("c-0"), _result_row)
    # Every connection closed (SQLite: the only one): anything uncommitted would be gone.
    await store.engine.dispose()
    fresh = db.make_engine(database_url)
    try:
        async with db.make_sessionmaker(fresh)() as s:
            command = await s.get(Command, "c-0")
            queued = await s.scalar(select(func.count()).select_from(Outbox))
    finally:
        await fresh.dispose()
    assert command is not None and command.state == "RESOLVED" and queued == 1


async def test_a_command_is_decided_once(store: Store) -> None:
    await store.units.run(command_sql.record_command, _command("c-2"))
    assert await store.units.run(command_sql.decide, _decision("c-2"), _result_row)
    again = await store.units.run(command_sql.decide, _decision("c-2", "REJECTED"), _result_row)
    assert again is None
    async with store.sessions() as s:
        command = await s.get(Command, "c-2")
        queued = await s.scalar(select(func.count()).select_from(Outbox))
    assert command is not None and command.result == "ACCEPTED"
    assert queued == 1


async def _race(store: Store, command_id: str, decide: Callable[[str], Awaitable[Any]]) -> None:
    """Twelve decisions of one command at once: one wins, with the one outbox row."""
    await store.units.run(command_sql.record_command, _command(command_id))
    results = ["ACCEPTED", "REJECTED", "TIMEOUT", "FAILED"] * 3
    decided = await asyncio.gather(*(decide(r) for r in results))
    winners = [d for d in decided if d is not None]
    assert len(winners) == 1
    async with store.sessions() as s:
        command = await s.get(Command, command_id)
        queued = list(await s.scalars(select(Outbox)))
    assert command is not None
    assert [(q.id, q.body["result"]) for q in queued] == [(winners[0].outbox_id, command.result)]


async def test_racing_decisions_decide_once(store: Store) -> None:
    """On PostgreSQL each decision is a transaction on a connection of its own; the UPDATE's
    condition on the pending state lets one win. On SQLite they share trips, in savepoints."""

    def row_saying(result: str) -> command_sql.OutboxFor:
        def row(command: Any, party_version: str | None) -> dict[str, Any]:
            values = _result_row(command, party_version)
            return {**values, "body": {**values["body"], "result": result}}

        return row

    await _race(
        store,
        "c-race",
        lambda r: store.units.run(command_sql.decide, _decision("c-race", r), row_saying(r)),
    )


def _template(result: str) -> command_sql.ResultTemplate:
    blank = _result_row(
        SimpleNamespace(party_id=0, response_url="", correlation_id=None, type="", id=""), None
    )
    return command_sql.ResultTemplate(
        body_211={"result": result, "form": "2.1.1"},
        body_221={"result": result, "form": "2.2.1"},
        values=blank,
    )


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_postgresql_decides_at_once_as_the_two_statements_do(store: Store) -> None:
    """One statement writes what `decide` writes: the command's outcome, and its result's row
    built from the command (peer, the peer's current version, response_url, correlation id, the
    body in the command's version), with the template's own columns."""
    for command_id, version in (("c-a1", "2.1.1"), ("c-a2", "2.2.1")):
        await store.units.run(
            command_sql.record_command,
            {
                **_command(command_id),
                "ocpi_version": version,
                "correlation_id": f"cor-{command_id}",
            },
        )
    template = _template("ACCEPTED")
    decided = await store.units.run(command_sql.decide_at_once, _decision("c-a1"), template)
    other = await store.units.run(command_sql.decide_at_once, _decision("c-a2"), template)
    assert decided is not None and other is not None
    assert decided.command.party_id == 7
    async with store.sessions() as s:
        command = await s.get(Command, "c-a1")
        rows = {q.command_id: q for q in await s.scalars(select(Outbox))}
    assert command is not None and command.state == "RESOLVED"
    assert command.resolved_at is not None
    assert as_utc(command.resolved_at) == NOW + timedelta(seconds=1)
    assert (command.result, command.station_status) == ("ACCEPTED", "Accepted")
    queued = rows["c-a1"]
    assert queued.id == decided.outbox_id
    assert (queued.party_id, queued.url, queued.correlation_id) == (
        7,
        "https://emsp.example.com/r/1",
        "cor-c-a1",
    )
    assert queued.ocpi_version == "2.1.1"  # the party's version now, as `decide` writes it
    assert queued.body == {"result": "ACCEPTED", "form": "2.1.1"}
    assert rows["c-a2"].body == {"result": "ACCEPTED", "form": "2.2.1"}
    for name in command_sql.TEMPLATE_COLUMNS:
        written = getattr(queued, name)
        assert written == template.values[name], name
        assert decided.outbox[name] == written, name
    assert decided.outbox["body"] == queued.body and decided.outbox["url"] == queued.url


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_postgresql_racing_decisions_at_once_decide_once(store: Store) -> None:
    await _race(
        store,
        "c-race1",
        lambda r: store.units.run(
            command_sql.decide_at_once, _decision("c-race1", r), _template(r)
        ),
    )
    again = await store.units.run(command_sql.decide_at_once, _decision("c-race1"), _template("X"))
    assert again is None


async def test_a_failing_unit_leaves_nothing_written(store: Store) -> None:
    def record_then_fail(x: Executor) -> None:
        command_sql.record_command(x, _command("c-3"))
        command_sql.record_command(x, _command("c-3"))  # the same primary key again

    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        await store.units.run(record_then_fail)
    async with store.sessions() as s:
        assert await s.get(Command, "c-3") is None
    # The connection is usable afterwards (SQLite has only the one).
    await store.units.run(command_sql.record_command, _command("c-3"))


async def test_a_unit_atomic_alone_still_writes_all_or_nothing(store: Store) -> None:
    """On PostgreSQL such a unit runs without BEGIN/COMMIT: its one statement (here an
    executemany) must still apply whole or not at all."""

    @atomic_alone
    def record_many(x: Executor, ids: list[str]) -> None:
        x.many(_INSERT_COMMANDS, [_command(i) for i in ids])

    # On SQLite, the three share one trip's transaction, where such units have no savepoint.
    failed, *twice = await asyncio.gather(
        store.units.run(record_many, ["m-1", "m-2", "m-1"]),
        store.units.run(command_sql.record_command, _command("m-3")),
        store.units.run(command_sql.record_command, _command("m-3")),
        return_exceptions=True,
    )
    assert isinstance(failed, Exception) and _DUPLICATE.search(str(failed))
    # m-3 twice: one of them fails (on PostgreSQL either may come first).
    [refused] = [outcome for outcome in twice if outcome is not None]
    assert None in twice and _DUPLICATE.search(str(refused))
    async with store.sessions() as s:
        assert set(await s.scalars(select(Command.id))) == {"m-3"}
    await store.units.run(record_many, ["m-1", "m-2"])
    async with store.sessions() as s:
        assert set(await s.scalars(select(Command.id))) == {"m-1", "m-2", "m-3"}


async def test_units_at_once_each_succeed_or_fail_alone(store: Store) -> None:
    """On SQLite the units arriving together share one trip and one commit (store/units.py):
    a failing one must still roll back alone, and each caller hear only of its own."""
    await store.units.run(command_sql.record_command, _command("taken"))

    def record_two(x: Executor, first_id: str, second_id: str) -> str:
        command_sql.record_command(x, _command(first_id))
        command_sql.record_command(x, _command(second_id))
        return first_id

    outcomes = await asyncio.gather(
        *(
            store.units.run(record_two, f"g-{n}", "taken" if n % 3 == 1 else f"h-{n}")
            for n in range(9)
        ),
        return_exceptions=True,
    )
    for n, outcome in enumerate(outcomes):
        if n % 3 == 1:
            assert isinstance(outcome, Exception), outcome
        else:
            assert outcome == f"g-{n}"
    async with store.sessions() as s:
        written = set(await s.scalars(select(Command.id)))
    expected = {"taken"} | {f"{p}-{n}" for n in range(9) if n % 3 != 1 for p in "gh"}
    assert written == expected  # g-1, g-4, g-7 went with their failing unit


async def _decided(store: Store, prefix: str, count: int = 3) -> list[int]:
    """Record and decide `count` commands; their results' outbox ids."""
    ids = []
    for n in range(count):
        await store.units.run(command_sql.record_command, _command(f"{prefix}-{n}"))
        decided = await store.units.run(command_sql.decide, _decision(f"{prefix}-{n}"), _result_row)
        assert decided is not None
        ids.append(decided.outbox_id)
    return ids


async def test_deliveries_are_acknowledged_row_by_row(store: Store) -> None:
    ids = await _decided(store, "d")
    await store.units.run(command_sql.mark_delivered, ids[:2], NOW)
    async with store.sessions() as s:
        rows = {row.id: row for row in await s.scalars(select(Outbox))}
    assert [rows[i].attempts for i in ids] == [1, 1, 0]
    assert [rows[i].lease_until is None for i in ids] == [True, True, False]
    delivered_at = rows[ids[0]].delivered_at
    assert delivered_at is not None and as_utc(delivered_at) == NOW
    assert rows[ids[2]].delivered_at is None


@pytest.mark.parametrize(
    ("location", "evse", "ci", "expected"),
    [
        # A mapped location id wins over another station's own id.
        ("CP-1", None, False, ("CP-2", None)),
        ("CP-2", None, False, (None, None)),  # mapped away: its own id no longer names it
        ("cp-3", "cp-3-1", False, ("cp-3", None)),  # the station has no connector 1
        ("CP-3", None, False, (None, None)),
        ("CP-3", None, True, ("cp-3", None)),  # 2.2.1 CiString: case-insensitive fallback
        ("CP-1", "CP-2-1", False, ("CP-2", 1)),  # `{station}-{n}`
        ("CP-1", "cp-2-1", True, ("CP-2", 1)),
        ("CP-1", "cp-2-1", False, ("CP-2", None)),
        ("CP-1", "CP-1-1", False, ("CP-2", None)),  # another station's connector
        ("CP-1", "CP-2-0", False, ("CP-2", None)),  # connectors number from 1
        ("CP-1", f"CP-2-{2**31}", False, ("CP-2", None)),  # past INTEGER: no connector, no error
        ("CP-1", "EVSE-A", False, ("CP-2", None)),  # mapped, at another station
        ("CP-3", "CP-3-1", True, ("cp-3", None)),  # found case-insensitively, no connector 1
        ("CP-1", "NOSUCH-1", True, ("CP-2", None)),
        ("NOSUCH", "CP-2-1", True, (None, None)),
    ],
)
async def test_find_target(
    store: Store, location: str, evse: str | None, ci: bool, expected: tuple[Any, Any]
) -> None:
    target = await store.units.run(command_sql.find_target, location, evse, ci)
    station = target.station.id if target.station is not None else None
    connector = target.connector.connector_id if target.connector is not None else None
    assert (station, connector) == expected


async def test_a_mapped_evse_uid_wins_over_the_numbered_form(store: Store) -> None:
    async with store.sessions.begin() as s:
        station = await s.get(Station, "CP-2")
        assert station is not None
        station.location_id = None
    mapped = await store.units.run(command_sql.find_target, "CP-1", "EVSE-A", False)
    assert mapped.station is not None and mapped.connector is not None
    assert (mapped.station.id, mapped.connector.connector_id) == ("CP-1", 2)
    # CP-1's connector 2 is mapped to EVSE-A, so `CP-1-2` names nothing there.
    numbered = await store.units.run(command_sql.find_target, "CP-1", "CP-1-2", False)
    assert numbered.connector is None


async def test_station_reports_are_upserts_that_keep_what_the_operator_set(store: Store) -> None:
    """A station's socket, boot and connector status create its rows the first time and update
    only what the station reports afterwards: first_seen, the operator's lock, Location id and
    EVSE uid, and a connector's uuid stay."""
    later = NOW + timedelta(minutes=5)
    identity: dict[str, str | None] = {
        "vendor": "ACME",
        "model": "Wall-2",
        "serial_number": None,
        "firmware_version": "1.2",
    }
    await store.units.run(station_sql.station_connected, "CP-9", "1.6", NOW)
    await store.units.run(station_sql.connector_status, "CP-9", 1, "Available", None, NOW)
    async with store.sessions.begin() as s:
        station = await s.get(Station, "CP-9")
        assert station is not None
        station.locked, station.location_id = True, "LOC-9"
        connector = await s.get(Connector, ("CP-9", 1))
        assert connector is not None
        connector.evse_uid, connector.locked = "EVSE-9", True
        first_uuid = connector.uuid
    await store.units.run(station_sql.station_connected, "CP-9", "2.0.1", later)
    await store.units.run(station_sql.station_booted, "CP-9", "2.0.1", identity, later)
    await store.units.run(
        station_sql.connector_status, "CP-9", 1, "Faulted", "GroundFailure", later
    )
    await store.units.run(station_sql.connector_status, "CP-9", 2, "Available", None, later)
    async with store.sessions() as s:
        station = await s.get(Station, "CP-9")
        assert station is not None
        assert (station.ocpp_version, station.vendor, station.model, station.serial_number) == (
            "2.0.1",
            "ACME",
            "Wall-2",
            None,
        )
        assert station.firmware_version == "1.2"
        assert as_utc(station.first_seen) == NOW
        assert as_utc(station.last_seen) == later and station.last_boot is not None
        assert as_utc(station.last_boot) == later
        assert (station.locked, station.location_id) == (True, "LOC-9")
        one = await s.get(Connector, ("CP-9", 1))
        two = await s.get(Connector, ("CP-9", 2))
        assert one is not None and two is not None
        assert (one.uuid, one.evse_uid, one.locked) == (first_uuid, "EVSE-9", True)
        assert (one.ocpp_status, one.error_code, as_utc(one.updated_at)) == (
            "Faulted",
            "GroundFailure",
            later,
        )
        assert (two.ocpp_status, two.locked, two.evse_uid) == ("Available", False, None)
        assert uuid.UUID(two.uuid).version == 7 and two.uuid != one.uuid


def _frame(n: int, created_at: datetime) -> dict[str, Any]:
    return {
        "station_id": "CP-1",
        "direction": "IN",
        "message_type": "CALL",
        "action": "Heartbeat",
        "unique_id": f"u-{n}",
        "payload": {"n": n},
        "created_at": created_at,
    }


async def test_retention_deletes_old_frames_in_batches_and_keeps_the_rest(store: Store) -> None:
    old = [_frame(n, NOW - timedelta(days=40, minutes=n)) for n in range(5)]
    recent = [_frame(n, datetime.now(UTC) - timedelta(minutes=n)) for n in range(5, 8)]
    await store.units.run(comm_log._insert_frames, old + recent)
    frames = comm_log.CommunicationLog(store.units, retention_days=0)
    await frames.prune_expired()  # 0 days: every frame is kept
    kept = comm_log.CommunicationLog(store.units, retention_days=30)
    assert await kept.prune(NOW - timedelta(days=30), batch=2) == 5
    await kept.prune_expired()  # nothing left that old
    async with store.sessions() as s:
        left = sorted(
            str(unique_id) for unique_id in await s.scalars(select(OcppMessage.unique_id))
        )
    assert left == ["u-5", "u-6", "u-7"]


def _runs_of(store: Store, unit: Any) -> list[Any]:
    """The first argument of each run of `unit` through the store's units, as they happen."""
    runs: list[Any] = []
    run = store.units.run

    async def recording(ran: Any, *args: Any, **kwargs: Any) -> Any:
        if ran is unit:
            runs.append(args[0])
        return await run(ran, *args, **kwargs)

    store.units.run = recording  # type: ignore[method-assign, assignment]
    return runs


def _heartbeat_call(n: int) -> str:
    return f'[2,"hb-{n}","Heartbeat",{{}}]'


async def test_frames_logged_within_the_linger_share_one_write(store: Store) -> None:
    writes = _runs_of(store, comm_log._insert_frames)
    log = comm_log.CommunicationLog(store.units, linger=0.5, batch_size=4)
    log.start()
    try:
        for n in range(3):
            log.record("CP-1", "IN", _heartbeat_call(n), {})
            await asyncio.sleep(0.01)  # arriving one by one, as a station's frames do
        assert writes == []  # still lingering
        for n in range(3, 9):
            log.record("CP-1", "IN", _heartbeat_call(n), {})
        for _ in range(100):
            if sum(map(len, writes)) == 9:
                break
            await asyncio.sleep(0.01)
    finally:
        await log.stop()
    # Batches of at most 4, the later ones straight after the first, without a second linger.
    sizes = [len(rows) for rows in writes]
    assert sizes[0] == 4 and sum(sizes) == 9 and max(sizes) <= 4
    async with store.sessions() as s:
        logged = await s.scalar(select(func.count()).select_from(OcppMessage))
    assert logged == 9


async def test_frames_waiting_out_the_linger_are_written_when_the_log_stops(store: Store) -> None:
    log = comm_log.CommunicationLog(store.units, linger=60)
    log.start()
    log.record("CP-1", "IN", _heartbeat_call(1), {})
    log.record("CP-1", "OUT", '[3,"hb-1",{"currentTime":"2026-11-23T12:00:00Z"}]', {})
    await asyncio.sleep(0.05)  # the writer has woken and is lingering
    await log.stop()
    async with store.sessions() as s:
        logged = sorted(await s.scalars(select(OcppMessage.message_type)))
    assert logged == ["CALL", "CALLRESULT"]


async def test_flush_waits_for_the_batch_the_writer_has_taken(store: Store) -> None:
    """A batch the writer task took off the queue but has not committed is part of what
    `flush` promises readable (the operator API flushes before listing frames)."""
    run = store.units.run
    taken, release = asyncio.Event(), asyncio.Event()

    async def held(unit: Any, *args: Any, **kwargs: Any) -> Any:
        if unit is comm_log._insert_frames:
            taken.set()
            await release.wait()
        return await run(unit, *args, **kwargs)

    store.units.run = held  # type: ignore[method-assign]
    log = comm_log.CommunicationLog(store.units, linger=0)
    log.start()
    try:
        log.record("CP-1", "IN", _heartbeat_call(1), {})
        await asyncio.wait_for(taken.wait(), 5)  # the writer holds the frame, uncommitted
        flushing = asyncio.create_task(log.flush())
        await asyncio.sleep(0)
        assert not flushing.done()  # nothing queued, but a write is under way
        release.set()
        await asyncio.wait_for(flushing, 5)
        async with store.sessions() as s:
            logged = await s.scalar(select(func.count()).select_from(OcppMessage))
        assert logged == 1
    finally:
        release.set()
        await log.stop()


async def test_acknowledgements_within_the_linger_share_one_update(store: Store) -> None:
    ids = await _decided(store, "c-ack")
    updates = _runs_of(store, command_sql.mark_delivered)
    worker = DeliveryWorker(Settings(), store.sessions, PeerClient(), store.units)
    worker.ACK_LINGER = 0.5  # a margin for a loaded machine: the acks come 5 ms apart
    for row_id in ids:
        worker._acknowledge(row_id)
        await asyncio.sleep(0.005)  # acknowledgements come one POST answer at a time
    await worker.stop()  # waits for the acknowledgements under way
    assert [list(update) for update in updates] == [ids]
    async with store.sessions() as s:
        delivered = await s.scalar(
            select(func.count()).select_from(Outbox).where(Outbox.delivered_at.is_not(None))
        )
    assert delivered == 3


def test_an_insert_must_give_every_column_with_a_default() -> None:
    with pytest.raises(ValueError, match="attempts"):
        CompiledStatement(command_sql.outbox.insert(), SQLITE, keys=["kind", "party_id", "url"])


SQLITE = sqlite.dialect()
# Its first parameter is the DATETIME `at`.
_SET_CREATED_AT = CompiledStatement(
    command_sql.commands.update()
    .where(command_sql.commands.c.id == "x")
    .values(created_at=bindparam("at")),
    SQLITE,
)

_DATETIMES = st.one_of(
    st.datetimes(),
    st.datetimes(timezones=st.just(UTC)),
    st.dates(),
    st.none(),
)


@settings(max_examples=300, deadline=None)
@given(value=_DATETIMES)
def test_a_sqlite_datetime_is_bound_as_sqlalchemy_writes_it(value: Any) -> None:
    """The compiled statements' faster DATETIME bind writes SQLAlchemy's own text: SQLite
    compares datetimes as text, so one differing character would misorder rows."""
    theirs = command_sql.commands.c.created_at.type.dialect_impl(SQLITE).bind_processor(SQLITE)
    assert theirs is not None
    assert _SET_CREATED_AT.parameters({"at": value})[0] == theirs(value)


def test_a_sqlite_datetime_bind_refuses_what_sqlalchemy_refuses() -> None:
    with pytest.raises(TypeError, match="SQLite DateTime type only accepts"):
        _SET_CREATED_AT.parameters({"at": "2026-11-23 12:00:00"})


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_trip_waits_for_another_process_lock_off_the_event_loop(
    store: Store, database_url: str
) -> None:
    """SQLite units run on the loop's thread; a write lock another process holds (a CLI
    command) must be waited for elsewhere, or every connection the gateway serves would stall."""
    other = sqlite3.connect(make_url(database_url).database or "", check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE parties SET ocpi_version = '2.2.1' WHERE id = 7")
        unit = asyncio.create_task(store.units.run(command_sql.record_command, _command("w-1")))
        ticks = 0
        for _ in range(5):
            await asyncio.sleep(0.02)
            ticks += 1
        assert ticks == 5 and not unit.done()
        other.commit()
        await asyncio.wait_for(unit, 10)  # the unit went on once the lock was free
    finally:
        other.close()
    async with store.sessions() as s:
        assert await s.get(Command, "w-1") is not None
        party = await s.get(Party, 7)
        assert party is not None and party.ocpi_version == "2.2.1"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_checkpoints_run_off_the_event_loop(
    store: Store, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The WAL checkpoint may wait on the disk (fsync): it runs in a worker thread, on a
    connection of its own, while units go on."""
    threads: list[str] = []
    real = units_module._checkpoint

    def spy(conn: sqlite3.Connection) -> None:
        threads.append(threading.current_thread().name)
        real(conn)

    monkeypatch.setattr(units_module, "_checkpoint", spy)
    monkeypatch.setattr(Units, "CHECKPOINT_EVERY", 0.0)
    for n in range(3):
        await store.units.run(command_sql.record_command, _command(f"k-{n}"))
        await store.units.close()
    assert len(threads) == 3
    assert threading.main_thread().name not in threads
    # Everything committed reached the database file: nothing is left in the WAL to copy.
    other = sqlite3.connect(make_url(database_url).database or "")
    try:
        busy, logged, copied = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    finally:
        other.close()
    assert busy == 0 and logged == copied


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_runs_bulk_units_off_the_event_loop_and_others_on_it(store: Store) -> None:
    """A bulk unit (the communication log's hundreds of rows) would hold up every connection the
    loop serves; a command's few statements cost less on the loop than a thread hand-over."""
    seen: dict[str, str] = {}

    @bulk
    def many_rows(x: Executor, batch: int = 0) -> None:
        seen["bulk"] = threading.current_thread().name
        x.many(_INSERT_COMMANDS, [_command(f"b-{batch}-{n}") for n in range(200)])

    def few_rows(x: Executor, command_id: str = "p-1") -> None:
        seen["plain"] = threading.current_thread().name
        command_sql.record_command(x, _command(command_id))

    await store.units.run(many_rows)
    await store.units.run(few_rows)
    assert seen["plain"] == threading.main_thread().name
    assert seen["bulk"] != threading.main_thread().name
    # Queued together for one trip, the bulk unit does not take the other off the loop.
    seen.clear()
    await asyncio.gather(store.units.run(few_rows, "p-2"), store.units.run(many_rows, 1))
    assert seen["plain"] == threading.main_thread().name
    assert seen["bulk"] != threading.main_thread().name
    async with store.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Command)) == 402


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_postgresql_units_take_connections_in_the_order_they_asked(
    store: Store, database_url: str
) -> None:
    """Callers that each run unit after unit share the pool in turn. The pool's own queue let
    the caller that had just checked a connection in take it straight back, ahead of those
    waiting (docs/performance.md#postgresql-connections)."""
    engine = db.make_engine(database_url, pool_size=units_module.SESSION_RESERVE + 1)
    units = Units(engine)  # one connection for units
    done: list[int] = []

    def read(x: Executor) -> None:
        x.rows(select(func.count().label("n")).select_from(Command), {})

    async def caller(n: int) -> None:
        for _ in range(8):
            await units.run(read)
            done.append(n)

    try:
        await asyncio.gather(*(caller(n) for n in range(5)))
    finally:
        await units.close()
        await engine.dispose()
    # In turn: no caller runs its third unit before every caller has run its first, and so on.
    for i in range(len(done)):
        counts = [done[: i + 1].count(n) for n in range(5)]
        assert max(counts) - min(counts) <= 2, done


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_postgresql_units_keep_their_connections_between_them(store: Store) -> None:
    """Units hand their connections on to each other instead of a pool checkout and check-in
    around every unit (docs/performance.md#postgresql-connections), and give them back to the
    pool when closed."""
    checkouts = 0

    def count_checkout(*_: Any) -> None:
        nonlocal checkouts
        checkouts += 1

    def read(x: Executor) -> None:
        x.rows(select(func.count().label("n")).select_from(Command), {})

    event.listen(store.engine.sync_engine, "checkout", count_checkout)
    try:
        for _ in range(20):
            await store.units.run(read)
        await asyncio.gather(*(store.units.run(read) for _ in range(5)))
    finally:
        event.remove(store.engine.sync_engine, "checkout", count_checkout)
    assert checkouts <= 5, checkouts  # one for the sequence, at most five at once
    await store.units.close()
    assert store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


class _Wire:
    """What the outcome's unit renders: results by version; no peer has a sessions receiver."""

    def command_result(self, version: str, result: Any, message: str | None) -> dict[str, Any]:
        return {"form": version, "result": str(result)}

    def session(self, *args: Any) -> dict[str, Any]:
        raise AssertionError("no session is pushed without a receiver")

    cdr = session

    def session_push_url(self, party: Any, session: Any) -> str | None:
        return None


def _result(result: str) -> ResultRow:
    blank = _result_row(
        SimpleNamespace(party_id=0, response_url="", correlation_id=None, type="", id=""), None
    )
    return ResultRow(render=lambda version: {"form": version, "result": result}, values=blank)


async def test_an_outcome_is_recorded_one_way_with_or_without_a_reservation_following(
    store: Store,
) -> None:
    """SqlCommandStore.record_outcome: the command's outcome and its result's row, and for a
    RESERVE_NOW its reservation (ACTIVE, with its 2.2.1 Session) in the same transaction;
    never twice. Without a reservation, PostgreSQL takes the one-statement form."""
    commands = SqlCommandStore(store.units, _Wire())
    expiry = NOW + timedelta(hours=1)
    reserve = {
        **_command("c-r"),
        "type": "RESERVE_NOW",
        "ocpi_version": "2.2.1",
        "request": {"reservation_id": "R-1", "token": {"uid": "04A1"}},
    }
    reserving = Reserving(
        party_id=7, station_id="CP-1", reservation_id="R-1", connector_id=1, expiry_date=expiry
    )
    assert await commands.record_reserving(reserve, reserving) == 1
    await commands.record(_command("c-s"))
    follows = ReservationFollows(by_command=True, status="ACTIVE", opens_session=True)
    reserved = await commands.record_outcome(_decision("c-r"), _result("ACCEPTED"), follows)
    started = await commands.record_outcome(_decision("c-s"), _result("ACCEPTED"), None)
    assert reserved is not None and started is not None
    assert reserved.queued_more and not started.queued_more
    assert (reserved.row.body, started.row.body) == (
        {"form": "2.2.1", "result": "ACCEPTED"},
        {"form": "2.1.1", "result": "ACCEPTED"},
    )
    assert (
        await commands.record_outcome(_decision("c-r", "REJECTED"), _result("X"), follows) is None
    )
    async with store.sessions() as s:
        [reservation] = list(await s.scalars(select(Reservation)))
        [session] = list(await s.scalars(select(ChargingSession)))
        queued = list(await s.scalars(select(Outbox).order_by(Outbox.id)))
    assert (reservation.status, reservation.command_id, reservation.session_pk) == (
        "ACTIVE",
        "c-r",
        session.pk,
    )
    assert (session.status, session.command_id, session.token) == (
        "RESERVATION",
        "c-r",
        {"uid": "04A1"},
    )
    assert [(q.id, q.command_id) for q in queued] == [
        (reserved.row.id, "c-r"),
        (started.row.id, "c-s"),
    ]
