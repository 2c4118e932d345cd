"""Reads of CDRs for the OCPI CDRs module (CPO side): a party sees only its own CDRs, each
with the session it closes (a CDR's object is rendered from that session)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .charging_session_queries import SessionAtStation
from .db import SessionFactory
from .listing import Listing, count_and_page, in_window
from .models import Cdr, ChargingSession
from .station_queries import station_and_connectors


async def _closed_session(s: AsyncSession, cdr: Cdr) -> SessionAtStation:
    session = await s.get(ChargingSession, cdr.session_pk)
    assert session is not None
    station, connectors = await station_and_connectors(s, session.station_id)
    assert station is not None
    return SessionAtStation(session, station, connectors)


async def party_cdrs_page(
    sessions: SessionFactory,
    party_id: int,
    created_from: datetime | None,
    created_to: datetime | None,
    offset: int,
    limit: int,
) -> Listing[SessionAtStation]:
    """The party's CDRs, oldest first, those created in [created_from, created_to) where
    given; each as the session it closes."""
    query = in_window(
        select(Cdr).where(Cdr.party_id == party_id), Cdr.created_at, created_from, created_to
    )
    async with sessions() as s:
        total, rows = await count_and_page(s, query, (Cdr.created_at, Cdr.id), offset, limit)
        return Listing([await _closed_session(s, cdr) for cdr in rows], total)


async def party_cdr(
    sessions: SessionFactory, party_id: int, cdr_id: str
) -> SessionAtStation | None:
    """The session the party's CDR with that id closes; None if the party has no such CDR."""
    async with sessions() as s:
        cdr = await s.scalar(select(Cdr).where(Cdr.id == cdr_id, Cdr.party_id == party_id))
        return await _closed_session(s, cdr) if cdr is not None else None
