"""Operator-maintained station data: which OCPI Location and EVSE ids a station's connectors
have when a hub or roaming partner expects ids of its own (GIREVE rewrites ids, seed 001)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chargegate.domain.clock import utcnow
from chargegate.domain.ids import new_id
from chargegate.store.models import Connector, Station


class MappingConflict(Exception):
    pass


class StationMapping:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def map(
        self, station_id: str, *, location_id: str | None, evses: dict[int, str]
    ) -> Station:
        """Set the Location id and the EVSE uids of connectors; a station not seen yet is
        created, so it can be mapped before it first connects."""
        now = utcnow()
        try:
            async with self._sessions.begin() as s:
                station = await s.get(Station, station_id)
                if station is None:
                    station = Station(
                        id=station_id,
                        ocpp_version="1.6",
                        first_seen=now,
                        last_seen=now,
                        locked=False,
                    )
                    s.add(station)
                if location_id is not None:
                    station.location_id = location_id or None
                for connector_id, uid in evses.items():
                    if connector_id < 1:
                        raise MappingConflict("connector ids of EVSEs start at 1")
                    taken = await s.scalar(
                        select(Connector).where(
                            Connector.station_id == station_id,
                            Connector.evse_uid == uid,
                            Connector.connector_id != connector_id,
                        )
                    )
                    if taken is not None:
                        raise MappingConflict(
                            f"EVSE uid {uid!r} is already connector {taken.connector_id}'s"
                        )
                    connector = await s.get(Connector, (station_id, connector_id))
                    if connector is None:
                        connector = Connector(
                            station_id=station_id,
                            connector_id=connector_id,
                            uuid=new_id(),
                            locked=False,
                            updated_at=now,
                        )
                        s.add(connector)
                    connector.evse_uid = uid
        except IntegrityError as exc:
            raise MappingConflict(f"location id {location_id!r} is already in use") from exc
        return station
