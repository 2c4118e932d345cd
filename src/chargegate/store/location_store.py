"""The service's LocationStore (service/locations.py): stations' Location data and publication."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chargegate.domain.clock import ocpi_datetime, utcnow
from chargegate.domain.ids import new_id
from chargegate.service.locations import (
    ConnectorLocation,
    LocationChange,
    StationLocation,
    UnknownStation,
)

from .models import Connector, Station

# Stored with the site: when the operator last changed the Location, which its last_updated
# must show (a peer syncing by date_from would miss the change otherwise).
SITE_CHANGED = "last_updated"


class SqlLocationStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def station(self, station_id: str) -> StationLocation | None:
        async with self._sessions() as s:
            return await _location(s, await s.get(Station, station_id))

    async def by_location_id(self, location_id: str) -> StationLocation | None:
        async with self._sessions() as s:
            station = await s.scalar(select(Station).where(Station.location_id == location_id))
            if station is None:
                station = await s.scalar(
                    select(Station).where(Station.id == location_id, Station.location_id.is_(None))
                )
            return await _location(s, station)

    async def write(self, changes: list[LocationChange]) -> None:
        now = utcnow()
        async with self._sessions.begin() as s:
            for change in changes:
                station = await s.get(Station, change.station_id, with_for_update=True)
                if station is None:
                    raise UnknownStation(f"unknown station {change.station_id!r}")
                site = change.site if change.site is not None else station.site
                if site is not None and (change.site is not None or change.specs):
                    site = {**site, SITE_CHANGED: ocpi_datetime(now)}
                station.site = site
                if change.published is not None:
                    station.published = change.published
                for connector_id, spec in change.specs.items():
                    connector = await s.get(Connector, (station.id, connector_id))
                    if connector is None:
                        connector = Connector(
                            station_id=station.id,
                            connector_id=connector_id,
                            uuid=new_id(),
                            locked=False,
                        )
                        s.add(connector)
                    connector.spec = spec
                    connector.updated_at = now


async def _location(s: AsyncSession, station: Station | None) -> StationLocation | None:
    if station is None:
        return None
    connectors = await s.scalars(
        select(Connector)
        .where(Connector.station_id == station.id, Connector.connector_id >= 1)
        .order_by(Connector.connector_id)
    )
    return StationLocation(
        id=station.id,
        location_id=station.location_id,
        published=station.published,
        site=station.site,
        connectors=[ConnectorLocation(c.connector_id, c.evse_uid, c.spec) for c in connectors],
    )
