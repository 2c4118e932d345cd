"""`station_and_connectors` through an ORM session, for adapters that read a station with its
connectors in a session of their own (ocpi/cdrs.py)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Connector, Station


async def station_and_connectors(
    s: AsyncSession, station_id: str
) -> tuple[Station, list[Connector]]:
    station = await s.get(Station, station_id)
    assert station is not None
    connectors = list(await s.scalars(select(Connector).where(Connector.station_id == station_id)))
    return station, connectors
