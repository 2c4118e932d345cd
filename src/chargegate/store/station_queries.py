"""Reads of stations with their connectors: OCPI's Locations (a station is a Location, under
the id the operator mapped or its own) and the operator API's stations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .db import SessionFactory
from .listing import Listing, count_and_page, in_window
from .models import Connector, Station


@dataclass(frozen=True, slots=True)
class StationWithConnectors:
    station: Station
    connectors: list[Connector]


async def _connectors(s: AsyncSession, station_ids: list[str]) -> dict[str, list[Connector]]:
    """Each station's connectors, by connector id."""
    by_station: dict[str, list[Connector]] = {sid: [] for sid in station_ids}
    if station_ids:
        rows = await s.scalars(
            select(Connector)
            .where(Connector.station_id.in_(station_ids))
            .order_by(Connector.connector_id)
        )
        for connector in rows:
            by_station[connector.station_id].append(connector)
    return by_station


async def _with_connectors(s: AsyncSession, stations: list[Station]) -> list[StationWithConnectors]:
    connectors = await _connectors(s, [st.id for st in stations])
    return [StationWithConnectors(st, connectors[st.id]) for st in stations]


async def locations_page(
    sessions: SessionFactory,
    seen_from: datetime | None,
    seen_to: datetime | None,
    offset: int,
    limit: int,
    *,
    published_only: bool,
) -> Listing[StationWithConnectors]:
    """Stations by id, those last seen in [seen_from, seen_to) where given (OCPI's date_from
    and date_to on a Location's last_updated); only published ones with `published_only`."""
    query = in_window(select(Station), Station.last_seen, seen_from, seen_to)
    if published_only:
        query = query.where(Station.published)
    async with sessions() as s:
        total, stations = await count_and_page(s, query, (Station.id,), offset, limit)
        return Listing(await _with_connectors(s, stations), total)


async def location(
    sessions: SessionFactory, location_id: str, *, published_only: bool
) -> StationWithConnectors | None:
    """The station mapped to `location_id`, else the unmapped station with that id; None for
    an unpublished one with `published_only` (as the command path finds it, then refuses)."""
    async with sessions() as s:
        station = await s.scalar(select(Station).where(Station.location_id == location_id))
        if station is None:
            station = await s.scalar(
                select(Station).where(Station.id == location_id, Station.location_id.is_(None))
            )
        if station is None or (published_only and not station.published):
            return None
        [found] = await _with_connectors(s, [station])
        return found


async def stations_page(
    sessions: SessionFactory, offset: int, limit: int
) -> list[StationWithConnectors]:
    """Stations by id, `limit` of them from `offset` (no total: the operator API's list has
    none)."""
    async with sessions() as s:
        stations = list(
            await s.scalars(select(Station).order_by(Station.id).offset(offset).limit(limit))
        )
        return await _with_connectors(s, stations)


async def station(sessions: SessionFactory, station_id: str) -> StationWithConnectors | None:
    async with sessions() as s:
        found = await s.get(Station, station_id)
        if found is None:
            return None
        [with_connectors] = await _with_connectors(s, [found])
        return with_connectors


async def station_and_connectors(
    s: AsyncSession, station_id: str
) -> tuple[Station | None, list[Connector]]:
    """In an open session: a station (None if unknown) and its connectors in the database's
    order, as a Session or CDR object is rendered from."""
    found = await s.get(Station, station_id)
    if found is None:
        return None, []
    connectors = list(await s.scalars(select(Connector).where(Connector.station_id == station_id)))
    return found, connectors
