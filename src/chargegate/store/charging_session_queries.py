"""Reads of charging sessions for the OCPI Sessions module (CPO side): a party sees only the
sessions it started, each with the station it runs at."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from .db import SessionFactory
from .listing import Listing, count_and_page, in_window
from .models import ChargingSession, Connector, Station
from .station_queries import station_and_connectors


@dataclass(frozen=True, slots=True)
class SessionAtStation:
    """A charging session with its station and that station's connectors: what its OCPI
    object (and its CDR's) is rendered from."""

    session: ChargingSession
    station: Station
    connectors: list[Connector]


async def party_sessions_page(
    sessions: SessionFactory,
    party_id: int,
    updated_from: datetime | None,
    updated_to: datetime | None,
    offset: int,
    limit: int,
) -> Listing[SessionAtStation]:
    """The party's sessions in the order they began, those last updated in [updated_from,
    updated_to) where given. A session whose station is gone is left out of the page but
    still counted in the total."""
    query = in_window(
        select(ChargingSession).where(ChargingSession.party_id == party_id),
        ChargingSession.last_updated,
        updated_from,
        updated_to,
    )
    async with sessions() as s:
        total, rows = await count_and_page(s, query, (ChargingSession.pk,), offset, limit)
        items = []
        for row in rows:
            station, connectors = await station_and_connectors(s, row.station_id)
            if station is not None:
                items.append(SessionAtStation(row, station, connectors))
    return Listing(items, total)


async def party_session(
    sessions: SessionFactory, party_id: int, session_id: str
) -> SessionAtStation | None:
    """The party's session with that id; None if there is none or its station is gone."""
    async with sessions() as s:
        row = await s.scalar(
            select(ChargingSession).where(
                ChargingSession.id == session_id, ChargingSession.party_id == party_id
            )
        )
        if row is None:
            return None
        station, connectors = await station_and_connectors(s, row.station_id)
    return SessionAtStation(row, station, connectors) if station is not None else None
