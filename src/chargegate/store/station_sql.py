"""Upserts for what stations report about themselves (socket opened, boot, connector status).

One INSERT … ON CONFLICT DO UPDATE each, instead of a read, an ORM object and a flush: after a
gateway restart every station reconnects and boots at once, and these three writes (five rows
for a two-connector station) are what the reconnect storm costs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from .models import Connector, Station, table_of

stations = table_of(Station)
connectors = table_of(Connector)


async def _upsert(
    conn: AsyncConnection,
    table: Table,
    key: list[str],
    values: dict[str, Any],
    update: list[str],
) -> None:
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=key, set_={name: statement.excluded[name] for name in update}
    )
    await conn.execute(statement)


async def _station(
    conn: AsyncConnection,
    station_id: str,
    ocpp_version: str,
    now: datetime,
    reported: dict[str, Any],
) -> None:
    await _upsert(
        conn,
        stations,
        ["id"],
        {
            "id": station_id,
            "ocpp_version": ocpp_version,
            "first_seen": now,
            "last_seen": now,
            "locked": False,
            **reported,
        },
        ["ocpp_version", "last_seen", *reported],
    )


async def station_connected(
    conn: AsyncConnection, station_id: str, ocpp_version: str, now: datetime
) -> None:
    """The station exists from its first socket on, before it boots."""
    await _station(conn, station_id, ocpp_version, now, {})


async def station_booted(
    conn: AsyncConnection,
    station_id: str,
    ocpp_version: str,
    identity: dict[str, str | None],
    now: datetime,
) -> None:
    """`identity`: vendor, model, serial_number, firmware_version as the station reported."""
    await _station(conn, station_id, ocpp_version, now, {**identity, "last_boot": now})


async def connector_status(
    conn: AsyncConnection,
    station_id: str,
    connector_id: int,
    status: str,
    error_code: str | None,
    now: datetime,
) -> None:
    """A connector's status; the connector is created (with its stable uuid) the first time."""
    await _upsert(
        conn,
        connectors,
        ["station_id", "connector_id"],
        {
            "station_id": station_id,
            "connector_id": connector_id,
            "uuid": str(uuid.uuid4()),
            "locked": False,
            "ocpp_status": status,
            "error_code": error_code,
            "updated_at": now,
        },
        ["ocpp_status", "error_code", "updated_at"],
    )
