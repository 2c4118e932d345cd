"""Upserts for what stations report about themselves (socket opened, boot, connector status),
as units of work (store/units.py).

One INSERT … ON CONFLICT DO UPDATE each, instead of a read, an ORM object and a flush: after a
gateway restart every station reconnects and boots at once, and these three writes (five rows
for a two-connector station) are what the reconnect storm costs. As units they are compiled
once and, on SQLite, group-committed on the event loop's thread with whatever else is waiting,
instead of one session (and one turn of the pool's single connection) each.

The statements are PostgreSQL's INSERT construct. SQLite (3.24 and later) spells the upsert
the same way, `ON CONFLICT (key) DO UPDATE SET c = excluded.c`, and SQLAlchemy's SQLite compiler
renders this construct as it renders its own; units compile a statement for the engine they run
on, and the tests run these on both engines."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql

from chargegate.domain.ids import new_id

from .models import Connector, Station, table_of
from .units import Executor, atomic_alone

stations = table_of(Station)
connectors = table_of(Connector)

IDENTITY = ("vendor", "model", "serial_number", "firmware_version")


def _upsert(table: Any, key: list[str], update: list[str]) -> postgresql.Insert:
    insert = postgresql.insert(table)
    return insert.on_conflict_do_update(
        index_elements=key, set_={name: insert.excluded[name] for name in update}
    )


_SEEN = _upsert(stations, ["id"], ["ocpp_version", "last_seen"])
_BOOTED = _upsert(stations, ["id"], ["ocpp_version", "last_seen", *IDENTITY, "last_boot"])
_CONNECTOR = _upsert(
    connectors, ["station_id", "connector_id"], ["ocpp_status", "error_code", "updated_at"]
)


def _station_values(station_id: str, ocpp_version: str, now: datetime) -> dict[str, Any]:
    return {
        "id": station_id,
        "ocpp_version": ocpp_version,
        "first_seen": now,
        "last_seen": now,
        "locked": False,
        # A station first seen here was not registered or published by an operator (open
        # admission serves it all the same; docs/security.md#station-admission).
        "registered": False,
        "disabled": False,
        "published": False,
    }


@atomic_alone
def station_connected(x: Executor, station_id: str, ocpp_version: str, now: datetime) -> None:
    """The station exists from its first socket on, before it boots."""
    x.rows(_SEEN, _station_values(station_id, ocpp_version, now))


@atomic_alone
def station_booted(
    x: Executor,
    station_id: str,
    ocpp_version: str,
    identity: dict[str, str | None],
    now: datetime,
) -> None:
    """`identity`: vendor, model, serial_number, firmware_version as the station reported."""
    values = _station_values(station_id, ocpp_version, now)
    values.update({name: identity.get(name) for name in IDENTITY}, last_boot=now)
    x.rows(_BOOTED, values)


@atomic_alone
def connector_status(
    x: Executor,
    station_id: str,
    connector_id: int,
    status: str,
    error_code: str | None,
    now: datetime,
) -> None:
    """A connector's status; the connector is created (with its stable uuid) the first time."""
    x.rows(
        _CONNECTOR,
        {
            "station_id": station_id,
            "connector_id": connector_id,
            "uuid": new_id(),
            "locked": False,
            "ocpp_status": status,
            "error_code": error_code,
            "updated_at": now,
        },
    )
