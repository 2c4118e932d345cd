"""A command's hot path (find its target, record it, decide it and queue the result,
acknowledge the delivery) as units of work (store/units.py) over prebuilt Core statements.

Why not the ORM here: profiled under load on SQLite, the ORM's unit of work, identity map and
per-call statement construction took about half of the CPU a command cost; then SQLAlchemy's
per-execution work was most of the rest, which the units avoid on SQLite. Rows carry the same
attribute names as the mapped classes, so callers read them the same way."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, literal_column, or_, select, update

from chargegate.domain.evse import connector_number_of

from .models import Command, Connector, Outbox, Party, Station, table_of
from .units import Executor, atomic_alone, first

stations = table_of(Station)
connectors = table_of(Connector)
commands = table_of(Command)
outbox = table_of(Outbox)
parties = table_of(Party)


def _match(column: Any, case_insensitive: bool) -> Any:
    """column = :value, or lower(column) = :value (the caller passes the value lower-cased)."""
    return (func.lower(column) if case_insensitive else column) == bindparam("value")


def _station_statement(case_insensitive: bool) -> Any:
    return (
        select(stations)
        .where(
            or_(
                _match(stations.c.location_id, case_insensitive),
                and_(
                    _match(stations.c.id, case_insensitive),
                    stations.c.location_id.is_(None),
                ),
            )
        )
        # A mapped location id wins over another station's own id.
        .order_by(stations.c.location_id.is_(None))
        .limit(1)
    )


def _connector_statement(case_insensitive: bool, by_number: bool) -> Any:
    match = _match(connectors.c.evse_uid, case_insensitive)
    if by_number:
        match = or_(
            match,
            and_(connectors.c.connector_id == bindparam("number"), connectors.c.evse_uid.is_(None)),
        )
    return (
        select(connectors)
        .where(connectors.c.station_id == bindparam("station_id"), match)
        .order_by(connectors.c.evse_uid.is_(None))
        .limit(1)
    )


_STATION = {ci: _station_statement(ci) for ci in (False, True)}
_CONNECTOR = {(ci, n): _connector_statement(ci, n) for ci in (False, True) for n in (False, True)}
_INSERT_COMMAND = insert(commands)
# The peer's OCPI version comes back with the resolved row: one statement fewer per command.
# The outer column is spelt out because SQLite's RETURNING drops table names, and parties has a
# party_id column of its own that an unqualified name would mean.
_PARTY_VERSION = (
    select(parties.c.ocpi_version)
    .where(parties.c.id == literal_column(f"{commands.name}.{commands.c.party_id.name}"))
    .scalar_subquery()
    .label("party_version")
)
_RESOLVE = (
    update(commands)
    .where(commands.c.id == bindparam("command_id"), commands.c.state == bindparam("pending"))
    .values(
        state=bindparam("new_state"),
        result=bindparam("new_result"),
        message=bindparam("new_message"),
        station_status=bindparam("new_station_status"),
        resolved_at=bindparam("now"),
    )
)
_RESOLVE_WHOLE = _RESOLVE.returning(*commands.c, _PARTY_VERSION)
# What a result's request is built from (CommandService._result_row). Reading back the whole
# row converted its request JSON and five datetimes for nothing: 2 % of a command's CPU.
_RESOLVE_FOR_RESULT = _RESOLVE.returning(
    commands.c.id,
    commands.c.type,
    commands.c.party_id,
    commands.c.ocpi_version,
    commands.c.response_url,
    commands.c.correlation_id,
    _PARTY_VERSION,
)
_INSERT_OUTBOX = insert(outbox).returning(outbox.c.id)
# One row per id (executemany): plain binds compile the same for every engine.
_DELIVERED = (
    update(outbox)
    .where(outbox.c.id == bindparam("row_id"))
    .values(
        delivered_at=bindparam("now"),
        lease_until=None,
        last_error=None,
        attempts=outbox.c.attempts + 1,
    )
)


@dataclass(frozen=True, slots=True)
class Target:
    """What a location id (and EVSE uid) names: None where nothing matched."""

    station: Any | None
    connector: Any | None


@atomic_alone  # reads only
def find_target(
    x: Executor, location_id: str, evse_uid: str | None, case_insensitive: bool
) -> Target:
    """The station whose mapped location id is `location_id`, else the unmapped station with
    that id; then the connector mapped to `evse_uid`, else the unmapped connector the uid
    numbers at that station. Exact matches first (they use the indexes); lower() scans, so it is
    only the fallback for a 2.2.1 peer whose CiString differs from ours in case."""
    station = None
    for ci in (False, True) if case_insensitive else (False,):
        value = location_id.lower() if ci else location_id
        station = first(x, _STATION[ci], {"value": value})
        if station is not None:
            break
    if station is None or evse_uid is None:
        return Target(station, None)
    number = connector_number_of(evse_uid, station.id, case_insensitive)
    params: dict[str, Any] = {
        "station_id": station.id,
        "value": evse_uid.lower() if case_insensitive else evse_uid,
    }
    if number is not None:
        params["number"] = number
    connector = first(x, _CONNECTOR[case_insensitive, number is not None], params)
    return Target(station, connector)


@atomic_alone
def record_command(x: Executor, values: Mapping[str, Any]) -> None:
    x.rows(_INSERT_COMMAND, values)


@dataclass(frozen=True, slots=True)
class Decision:
    command_id: str
    pending: str
    state: str
    result: str
    message: str | None
    station_status: str | None
    now: datetime


@dataclass(frozen=True, slots=True)
class Decided:
    command: Any
    outbox_id: int
    outbox: dict[str, Any]


OutboxFor = Callable[[Any, str | None], dict[str, Any]]


def resolve_command(x: Executor, decision: Decision, whole: bool = True) -> Any | None:
    """Move a pending command to its outcome; None if it was no longer pending (decided
    elsewhere first). The row comes back for what follows (whole, or only what its result's
    request needs), with its peer's current OCPI version as `party_version`."""
    return first(
        x,
        _RESOLVE_WHOLE if whole else _RESOLVE_FOR_RESULT,
        {
            "command_id": decision.command_id,
            "pending": decision.pending,
            "new_state": decision.state,
            "new_result": decision.result,
            "new_message": decision.message,
            "new_station_status": decision.station_status,
            "now": decision.now,
        },
    )


def decide(x: Executor, decision: Decision, outbox_for: OutboxFor) -> Decided | None:
    """The command's one outcome and the request that reports it, in one transaction.
    `outbox_for(command, party_version)` builds that request's row (pure: it runs inside the
    unit, between its statements)."""
    command = resolve_command(x, decision, whole=False)
    if command is None:
        return None
    values = outbox_for(command, command.party_version)
    return Decided(command, insert_outbox(x, values), values)


def insert_outbox(x: Executor, values: Mapping[str, Any]) -> int:
    [row] = x.rows(_INSERT_OUTBOX, values)
    return int(row.id)


@atomic_alone
def mark_delivered(x: Executor, ids: Sequence[int], now: datetime) -> None:
    x.many(_DELIVERED, [{"row_id": row_id, "now": now} for row_id in ids])
