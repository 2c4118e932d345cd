"""The service's StationMappingStore (service/stations.py)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chargegate.domain.clock import utcnow
from chargegate.domain.ids import new_id
from chargegate.service.stations import MappingConflict

from .models import Connector, Station


class SqlStationMappingStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def map(
        self, station_id: str, *, location_id: str | None, evses: dict[int, str]
    ) -> Station:
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
