"""A command's hot path (find its target, record it, decide it and queue the result,
acknowledge the delivery) as units of work (store/units.py) over prebuilt Core statements.

Why not the ORM here: its unit of work, identity map and per-call statement construction cost
more CPU than the rest of a command (docs/performance.md#units-of-work). Rows carry the same
attribute names as the mapped classes, so callers read them the same way."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)

from chargegate.domain.evse import numbered_evse_uid
from chargegate.service.ports import Decision, SessionToStop, Target

from .models import (
    PENDING_STATE,
    ChargingSession,
    Command,
    Connector,
    Outbox,
    Party,
    Station,
    table_of,
)
from .units import Executor, atomic_alone, first

stations = table_of(Station)
connectors = table_of(Connector)
commands = table_of(Command)
outbox = table_of(Outbox)
parties = table_of(Party)
charging_sessions = table_of(ChargingSession)


def _match(column: Any, case_insensitive: bool, name: str) -> Any:
    """column = :name, or lower(column) = :name (the caller passes the value lower-cased)."""
    return (func.lower(column) if case_insensitive else column) == bindparam(name)


def _station_match(case_insensitive: bool) -> Any:
    return or_(
        _match(stations.c.location_id, case_insensitive, "location"),
        and_(_match(stations.c.id, case_insensitive, "location"), stations.c.location_id.is_(None)),
    )


# A mapped location id wins over another station's own id.
_MAPPED_STATION_FIRST = stations.c.location_id.is_(None)
_STATION = {
    ci: select(stations).where(_station_match(ci)).order_by(_MAPPED_STATION_FIRST).limit(1)
    for ci in (False, True)
}
# The connector's columns in the joined row, named apart from the station's (both have
# `locked`).
_CONNECTOR_COLUMNS = [column.label(f"connector__{column.key}") for column in connectors.c]


def _target_statement(station_ci: bool, connector_ci: bool, by_number: bool) -> Any:
    """The station and, joined, its connector the EVSE uid names: one statement, not two (on
    PostgreSQL a round trip of a command's four). The connector is the one mapped to the uid,
    else, where the uid reads `{station id}-{n}` for this station, its unmapped connector n."""
    match = _match(connectors.c.evse_uid, connector_ci, "evse")
    if by_number:
        match = or_(
            match,
            and_(
                connectors.c.connector_id == bindparam("number"),
                connectors.c.evse_uid.is_(None),
                _match(stations.c.id, connector_ci, "named"),
            ),
        )
    joined = stations.outerjoin(connectors, and_(connectors.c.station_id == stations.c.id, match))
    return (
        select(stations, *_CONNECTOR_COLUMNS)
        .select_from(joined)
        .where(_station_match(station_ci))
        .order_by(_MAPPED_STATION_FIRST, connectors.c.evse_uid.is_(None))
        .limit(1)
    )


# The station is looked for case-insensitively only for a peer whose ids are (find_target).
_TARGET = {
    (station_ci, connector_ci, by_number): _target_statement(station_ci, connector_ci, by_number)
    for station_ci, connector_ci in ((False, False), (False, True), (True, True))
    for by_number in (False, True)
}
_StationRow = namedtuple("_StationRow", [column.key for column in stations.c])  # type: ignore[misc]
_ConnectorRow = namedtuple("_ConnectorRow", [column.key for column in connectors.c])  # type: ignore[misc]
_STATION_WIDTH = len(stations.c)
_CONNECTOR_KEY = _STATION_WIDTH + list(connectors.c.keys()).index("station_id")
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
# What a result's request is built from (command_store._result_values). Reading back the whole
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

# PostgreSQL: the resolving UPDATE and the result's outbox INSERT as one statement (a
# data-modifying WITH), atomic by itself, so one round trip instead of four (BEGIN, UPDATE,
# INSERT, COMMIT). What the outbox row takes from the command (its peer, the peer's current
# version, response_url, correlation id, id, and the body in the command's OCPI version) comes
# from the resolved row in SQL; the rest is given. A command no longer pending updates no row,
# so nothing is inserted. SQLite has no data-modifying WITH; there `decide` runs in one trip.
_RESOLVED = _RESOLVE.returning(
    commands.c.id,
    commands.c.party_id,
    commands.c.ocpi_version,
    commands.c.response_url,
    commands.c.correlation_id,
    _PARTY_VERSION,
).cte("resolved")
# The outbox columns a template gives (the others come from the resolved command).
TEMPLATE_COLUMNS = (
    "kind",
    "method",
    "fifo",
    "attempts",
    "refusals",
    "next_attempt_at",
    "lease_until",
    "expires_at",
    "created_at",
    "delivered_at",
    "gave_up_at",
    "dropped_at",
    "last_error",
)
# The body in the command's version: 2.1.1's CommandResponse form, or 2.2.1's CommandResult
# (ocpi/wire.py chooses the same way).
_BODY_211 = bindparam("body_211", type_=outbox.c.body.type)
_BODY_221 = bindparam("body_221", type_=outbox.c.body.type)
_FROM_COMMAND = {
    "party_id": _RESOLVED.c.party_id,
    # Literal SQL, not binds: constants of the statement, not values a caller passes.
    "ocpi_version": func.coalesce(_RESOLVED.c.party_version, literal_column("'2.2.1'")),
    "url": _RESOLVED.c.response_url,
    "correlation_id": _RESOLVED.c.correlation_id,
    "command_id": _RESOLVED.c.id,
    "body": case(
        (_RESOLVED.c.ocpi_version == literal_column("'2.1.1'"), _BODY_211), else_=_BODY_221
    ),
}
_DECIDE_AT_ONCE = (
    insert(outbox)
    .from_select(
        [*TEMPLATE_COLUMNS, *_FROM_COMMAND],
        select(
            *(bindparam(name, type_=outbox.c[name].type) for name in TEMPLATE_COLUMNS),
            *_FROM_COMMAND.values(),
        ).select_from(_RESOLVED),
    )
    .returning(*outbox.c)
)
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


@atomic_alone  # reads only
def find_target(
    x: Executor, location_id: str, evse_uid: str | None, case_insensitive: bool
) -> Target:
    """The station whose mapped location id is `location_id`, else the unmapped station with
    that id; then the connector mapped to `evse_uid`, else the unmapped connector the uid
    numbers at that station. Exact matches first (they use the indexes); lower() scans, so it is
    only the fallback for a 2.2.1 peer whose CiString differs from ours in case."""
    cis = (False, True) if case_insensitive else (False,)
    if evse_uid is None:
        for ci in cis:
            station = first(x, _STATION[ci], {"location": _cased(location_id, ci)})
            if station is not None:
                return Target(station, None)
        return Target(None, None)
    params: dict[str, Any] = {"evse": _cased(evse_uid, case_insensitive)}
    numbered = numbered_evse_uid(evse_uid)
    if numbered is not None:
        params["named"] = _cased(numbered[0], case_insensitive)
        params["number"] = numbered[1]
    for ci in cis:
        params["location"] = _cased(location_id, ci)
        row = first(x, _TARGET[ci, case_insensitive, numbered is not None], params)
        if row is not None:
            station = _StationRow(*row[:_STATION_WIDTH])
            # An outer join's row without a connector has NULL for its key as for the rest.
            if row[_CONNECTOR_KEY] is None:
                return Target(station, None)
            return Target(station, _ConnectorRow(*row[_STATION_WIDTH:]))
    return Target(None, None)


def _cased(value: str, case_insensitive: bool) -> str:
    return value.lower() if case_insensitive else value


def expired_commands(now: Any) -> Select[str, str]:
    """The sweeper's query: pending commands past their deadline, read through the index of
    pending ones (models.PENDING_ONLY), which it can take only with the state as a literal."""
    return select(commands.c.id, commands.c.type).where(
        commands.c.state == literal_column(PENDING_STATE), commands.c.deadline < now
    )


@atomic_alone
def record_command(x: Executor, values: Mapping[str, Any]) -> None:
    x.rows(_INSERT_COMMAND, values)


_SESSION = {
    ci: select(
        charging_sessions.c.party_id,
        charging_sessions.c.status,
        charging_sessions.c.transaction_id,
        charging_sessions.c.connector_id,
        charging_sessions.c.station_id,
    )
    .where(_match(charging_sessions.c.id, ci, "session_id"))
    .limit(1)
    for ci in (False, True)
}
STATION_BY_ID = select(stations).where(stations.c.id == bindparam("station_id"))


@atomic_alone  # reads only
def session_to_stop(x: Executor, session_id: str, case_insensitive: bool) -> SessionToStop | None:
    """The session a STOP_SESSION names, with its station."""
    session = first(
        x, _SESSION[case_insensitive], {"session_id": _cased(session_id, case_insensitive)}
    )
    if session is None:
        return None
    station = first(x, STATION_BY_ID, {"station_id": session.station_id})
    assert station is not None
    return SessionToStop(
        party_id=session.party_id,
        status=session.status,
        transaction_id=session.transaction_id,
        connector_id=session.connector_id,
        station=station,
    )


_EXPIRED = expired_commands(bindparam("now"))


@atomic_alone  # reads only
def expired(x: Executor, now: datetime) -> list[tuple[str, str]]:
    """`expired_commands` as a unit (its `now` bound, so it compiles once)."""
    return [(row.id, row.type) for row in x.rows(_EXPIRED, {"now": now})]


_EVSE_STATUS = select(connectors.c.ocpp_status).where(
    connectors.c.station_id == bindparam("station_id"),
    connectors.c.connector_id == bindparam("connector_id"),
)


@atomic_alone  # reads only
def connector_status(x: Executor, station_id: str, connector_id: int) -> tuple[str | None] | None:
    """(the connector's OCPP status,), or None if the connector is not known."""
    row = first(x, _EVSE_STATUS, {"station_id": station_id, "connector_id": connector_id})
    return None if row is None else (row.ocpp_status,)


@dataclass(frozen=True, slots=True)
class Decided:
    command: Any
    outbox_id: int
    outbox: dict[str, Any]
    queued_more: bool = False


OutboxFor = Callable[[Any, str | None], dict[str, Any]]
# What else an outcome writes, inside its unit: (executor, resolved command) -> queued rows?
FollowUp = Callable[[Executor, Any], bool]


def resolve_command(x: Executor, decision: Decision, whole: bool = True) -> Any | None:
    """Move a pending command to its outcome; None if it was no longer pending (decided
    elsewhere first). The row comes back for what follows (whole, or only what its result's
    request needs), with its peer's current OCPI version as `party_version`."""
    return first(x, _RESOLVE_WHOLE if whole else _RESOLVE_FOR_RESULT, _resolve_values(decision))


def _resolve_values(decision: Decision) -> dict[str, Any]:
    return {
        "command_id": decision.command_id,
        "pending": decision.pending,
        "new_state": decision.state,
        "new_result": decision.result,
        "new_message": decision.message,
        "new_station_status": decision.station_status,
        "now": decision.now,
    }


def decide(
    x: Executor, decision: Decision, outbox_for: OutboxFor, follow_up: FollowUp | None = None
) -> Decided | None:
    """The command's one outcome and the request that reports it, in one transaction.
    `outbox_for(command, party_version)` builds that request's row (pure: it runs inside the
    unit, between its statements). `follow_up(x, command)` writes what else the outcome
    changes, before the result's row (whose id then follows the rows it queued); True when it
    queued rows of its own. Without one, PostgreSQL runs `decide_at_once` instead."""
    command = resolve_command(x, decision, whole=follow_up is not None)
    if command is None:
        return None
    queued_more = bool(follow_up(x, command)) if follow_up is not None else False
    values = outbox_for(command, command.party_version)
    return Decided(command, insert_outbox(x, values), values, queued_more)


@dataclass(frozen=True, slots=True)
class ResultTemplate:
    """A result's outbox row before its command is known: its body for a 2.1.1 command and for
    a 2.2.1 one, and the `TEMPLATE_COLUMNS`."""

    body_211: dict[str, Any]
    body_221: dict[str, Any]
    values: Mapping[str, Any]


@atomic_alone  # one statement
def decide_at_once(x: Executor, decision: Decision, template: ResultTemplate) -> Decided | None:
    """`decide` as one statement, for PostgreSQL (see `_DECIDE_AT_ONCE`). `Decided.command`
    is the outbox row (it carries the command's peer as `party_id`)."""
    values = {
        **_resolve_values(decision),
        **{name: template.values[name] for name in TEMPLATE_COLUMNS},
        _BODY_211.key: template.body_211,
        _BODY_221.key: template.body_221,
    }
    row = first(x, _DECIDE_AT_ONCE, values)
    if row is None:
        return None
    queued = {column.name: getattr(row, column.name) for column in outbox.c if column.name != "id"}
    return Decided(row, int(row.id), queued)


def insert_outbox(x: Executor, values: Mapping[str, Any]) -> int:
    [row] = x.rows(_INSERT_OUTBOX, values)
    return int(row.id)


@atomic_alone
def mark_delivered(x: Executor, ids: Sequence[int], now: datetime) -> None:
    x.many(_DELIVERED, [{"row_id": row_id, "now": now} for row_id in ids])
