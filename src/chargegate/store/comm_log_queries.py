"""Reads of the communication log (the OCPP frames store/comm_log.py writes) for the operator
API: filtered pages, newest first, and one frame with the exchange it belongs to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from .db import SessionFactory
from .listing import Listing, count_and_page
from .models import OcppMessage


@dataclass(frozen=True, slots=True)
class FrameFilter:
    """What a listed frame must match; a filter left empty matches every frame."""

    station: str | None = None
    action: str | None = None
    direction: str | None = None  # "IN" or "OUT"
    message_ids: list[str] | None = None  # any of them
    time_from: datetime | None = None  # inclusive
    time_to: datetime | None = None  # exclusive


async def frames_page(
    sessions: SessionFactory, matching: FrameFilter, offset: int, limit: int
) -> Listing[OcppMessage]:
    """The frames that match, newest first (by time, then by id)."""
    query = select(OcppMessage)
    if matching.station:
        query = query.where(OcppMessage.station_id == matching.station)
    if matching.action:
        query = query.where(OcppMessage.action == matching.action)
    if matching.direction:
        query = query.where(OcppMessage.direction == matching.direction)
    if matching.message_ids:
        query = query.where(OcppMessage.unique_id.in_(matching.message_ids))
    if matching.time_from:
        query = query.where(OcppMessage.created_at >= matching.time_from)
    if matching.time_to:
        query = query.where(OcppMessage.created_at < matching.time_to)
    order = (OcppMessage.created_at.desc(), OcppMessage.id.desc())
    async with sessions() as s:
        total, rows = await count_and_page(s, query, order, offset, limit)
    return Listing(rows, total)


async def frame_exchange(
    sessions: SessionFactory, frame_id: int
) -> tuple[OcppMessage, list[OcppMessage]] | None:
    """The frame and every frame of its station with its message id (the CALL and its
    answer), in the order written; None if there is no such frame."""
    async with sessions() as s:
        frame = await s.get(OcppMessage, frame_id)
        if frame is None:
            return None
        related = list(
            await s.scalars(
                select(OcppMessage)
                .where(
                    OcppMessage.station_id == frame.station_id,
                    OcppMessage.unique_id == frame.unique_id,
                )
                .order_by(OcppMessage.id)
            )
        )
    return frame, related
