"""Operator-maintained station data: which OCPI Location and EVSE ids a station's connectors
have when a hub or roaming partner expects ids of its own (GIREVE rewrites ids)."""

from __future__ import annotations

from typing import Protocol


class MappingConflict(Exception):
    pass


class MappedStation(Protocol):
    """A station as its mapping left it."""

    @property
    def id(self) -> str: ...

    @property
    def location_id(self) -> str | None: ...


class StationMappingStore(Protocol):
    async def map(
        self, station_id: str, *, location_id: str | None, evses: dict[int, str]
    ) -> MappedStation:
        """Set the Location id (None: unchanged, "": none) and the EVSE uids in one
        transaction, creating the station and connectors not seen yet; raises MappingConflict
        when an id is another's."""


class StationMapping:
    def __init__(self, store: StationMappingStore) -> None:
        self._store = store

    async def map(
        self, station_id: str, *, location_id: str | None, evses: dict[int, str]
    ) -> MappedStation:
        """Set the Location id and the EVSE uids of connectors; a station not seen yet is
        created, so it can be mapped before it first connects."""
        if any(connector_id < 1 for connector_id in evses):
            raise MappingConflict("connector ids of EVSEs start at 1")
        return await self._store.map(station_id, location_id=location_id, evses=evses)
