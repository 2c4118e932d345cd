"""The statements of a command's hot path (lookup, insert, resolve, queue, acknowledge), built
once as SQLAlchemy Core and run on the transaction's connection.

Why not the ORM here: profiled under load on SQLite, the ORM's unit of work, identity map and
per-call statement construction (with its cache-key generation) took about half of the CPU a
command cost. A prebuilt statement memoizes its cache key, and Core rows carry the same
attribute names as the mapped classes, so callers read them the same way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .models import Command, Connector, Outbox, Station, table_of

stations = table_of(Station)
connectors = table_of(Connector)
commands = table_of(Command)
outbox = table_of(Outbox)


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
    .returning(*commands.c)
)
_INSERT_OUTBOX = insert(outbox).returning(outbox.c.id)
_DELIVERED = (
    update(outbox)
    .where(outbox.c.id.in_(bindparam("ids", expanding=True)))
    .values(
        delivered_at=bindparam("now"),
        lease_until=None,
        last_error=None,
        attempts=outbox.c.attempts + 1,
    )
)


async def station_by_location(
    conn: AsyncConnection, location_id: str, case_insensitive: bool
) -> Row[Any] | None:
    """The station whose mapped location id is `location_id`, else the unmapped station with
    that id."""
    value = location_id.lower() if case_insensitive else location_id
    result = await conn.execute(_STATION[case_insensitive], {"value": value})
    return result.first()


async def connector_by_evse(
    conn: AsyncConnection,
    station_id: str,
    evse_uid: str,
    number: int | None,
    case_insensitive: bool,
) -> Row[Any] | None:
    """The connector mapped to `evse_uid`, else (with `number`) the unmapped connector of that
    number: one query for both."""
    params: dict[str, Any] = {
        "station_id": station_id,
        "value": evse_uid.lower() if case_insensitive else evse_uid,
    }
    if number is not None:
        params["number"] = number
    result = await conn.execute(_CONNECTOR[case_insensitive, number is not None], params)
    return result.first()


async def insert_command(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(_INSERT_COMMAND, values)


async def resolve_command(
    conn: AsyncConnection,
    command_id: str,
    *,
    pending: str,
    state: str,
    result: str,
    message: str | None,
    station_status: str | None,
    now: Any,
) -> Row[Any] | None:
    """Move a pending command to its outcome; None if it was no longer pending (decided
    elsewhere first). The whole row comes back for what follows."""
    rows = await conn.execute(
        _RESOLVE,
        {
            "command_id": command_id,
            "pending": pending,
            "new_state": state,
            "new_result": result,
            "new_message": message,
            "new_station_status": station_status,
            "now": now,
        },
    )
    return rows.first()


async def insert_outbox(conn: AsyncConnection, values: dict[str, Any]) -> int:
    result = await conn.execute(_INSERT_OUTBOX, values)
    return int(result.scalar_one())


async def mark_delivered(conn: AsyncConnection, ids: Sequence[int], now: Any) -> None:
    await conn.execute(_DELIVERED, {"ids": list(ids), "now": now})
