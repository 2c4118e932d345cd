"""Operator locks on stations and connectors: a locked EVSE refuses new commands, and the
reservations there are cancelled when the lock is set."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .remote_errors import RemoteCommandError
from .remote_requests import ConnectorRow, RemoteRequestStore, StationRow

# (station, connector or None for the whole station, why) -> None
OnLock = Callable[[str, int | None, str], Awaitable[None]]


class StationLocks:
    def __init__(self, store: RemoteRequestStore, on_lock: OnLock | None = None) -> None:
        """`on_lock` runs after a lock is set: reservations there can no longer be honoured."""
        self._store = store
        self._on_lock = on_lock

    async def set_station_lock(self, station_id: str, locked: bool) -> StationRow:
        station = await self._store.set_station_lock(station_id, locked)
        if station is None:
            raise RemoteCommandError("not_found", f"unknown station {station_id}")
        if locked and self._on_lock is not None:
            await self._on_lock(station_id, None, "the operator locked the station")
        return station

    async def set_connector_lock(
        self, station_id: str, connector_uuid: str, locked: bool
    ) -> ConnectorRow:
        connector = await self._store.set_connector_lock(station_id, connector_uuid, locked)
        if connector is None or connector.connector_id == 0:
            raise RemoteCommandError(
                "not_found", f"station {station_id} has no connector {connector_uuid}"
            )
        if locked and self._on_lock is not None:
            await self._on_lock(
                station_id, connector.connector_id, "the operator locked the connector"
            )
        return connector
