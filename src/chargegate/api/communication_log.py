"""The communication log: every OCPP frame, as JSON and as plain server-rendered pages."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from chargegate.domain.clock import ocpi_datetime
from chargegate.gateway import gateway_of
from chargegate.store import comm_log_queries
from chargegate.store.comm_log_queries import FrameFilter
from chargegate.store.listing import MAX_KEY, MAX_OFFSET
from chargegate.store.models import OcppMessage

from .auth import ReadScope

router = APIRouter(prefix="/communication_log", tags=["Operator communication log"])
# Frame ids are 64-bit keys: a larger number is a bad parameter, not a failed query.
FrameId = Annotated[int, Path(ge=1, le=MAX_KEY)]
templates = Jinja2Templates(directory=str(FilePath(__file__).parent / "templates"))


def _frame_json(m: OcppMessage) -> dict[str, Any]:
    return {
        "id": m.id,
        "cpId": m.station_id,
        "direction": m.direction,
        "messageType": m.message_type,
        "action": m.action,
        "messageId": m.unique_id,
        "payload": m.payload,
        "time": ocpi_datetime(m.created_at),
    }


def _filtered(
    station: str | None,
    action: str | None,
    direction: str | None,
    message_id: str | None,
    time_from: datetime | None,
    time_to: datetime | None,
) -> FrameFilter:
    return FrameFilter(
        station=station,
        action=action,
        direction=direction.upper() if direction else None,
        message_ids=message_id.split(",") if message_id else None,
        time_from=time_from,
        time_to=time_to,
    )


async def _page(
    request: Request, matching: FrameFilter, offset: int, limit: int
) -> tuple[int, list[OcppMessage]]:
    await gateway_of(request).comm_log.flush()  # what was just sent is visible at once
    listing = await comm_log_queries.frames_page(
        gateway_of(request).sessions, matching, offset, limit
    )
    return listing.total, listing.items


async def _pair(request: Request, frame_id: int) -> tuple[OcppMessage, list[OcppMessage]]:
    found = await comm_log_queries.frame_exchange(gateway_of(request).sessions, frame_id)
    if found is None:
        raise HTTPException(404, f"no frame {frame_id}")
    return found


@router.get("", summary="OCPP frames, newest first, filtered and paginated")
async def list_frames(
    request: Request,
    key: ReadScope,
    station: str | None = None,
    action: str | None = None,
    direction: str | None = Query(None, pattern="^(IN|OUT|in|out)$"),
    message_id: str | None = Query(None, description="one or more, comma-separated"),
    time_from: datetime | None = Query(None, alias="from"),
    time_to: datetime | None = Query(None, alias="to"),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    query = _filtered(station, action, direction, message_id, time_from, time_to)
    total, rows = await _page(request, query, offset, limit)
    return {
        "total": total,
        "offset": offset,
        "limit": limit,
        "items": [_frame_json(m) for m in rows],
    }


@router.get("/ui", response_class=HTMLResponse, summary="The same list as a page")
async def list_page(
    request: Request,
    key: ReadScope,
    station: str | None = None,
    action: str | None = None,
    direction: str | None = Query(None, pattern="^(IN|OUT|in|out)$"),
    message_id: str | None = None,
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(100, ge=1, le=500),
) -> HTMLResponse:
    query = _filtered(station, action, direction, message_id, None, None)
    total, rows = await _page(request, query, offset, limit)
    return templates.TemplateResponse(
        request,
        "log_list.html",
        {
            "frames": [_frame_json(m) for m in rows],
            "total": total,
            "filters": {
                "station": station,
                "action": action,
                "direction": direction,
                "message_id": message_id,
            },
        },
    )


@router.get("/ui/{frame_id}", response_class=HTMLResponse, summary="One frame with its pair")
async def detail_page(frame_id: FrameId, request: Request, key: ReadScope) -> HTMLResponse:
    frame, related = await _pair(request, frame_id)
    return templates.TemplateResponse(
        request,
        "log_detail.html",
        {"frame": _frame_json(frame), "exchange": [_frame_json(m) for m in related]},
    )


@router.get("/{frame_id}", summary="One frame with its request/response pair")
async def get_frame(frame_id: FrameId, request: Request, key: ReadScope) -> dict[str, Any]:
    frame, related = await _pair(request, frame_id)
    request_frame = next((m for m in related if m.message_type == "CALL"), None)
    response_frame = next((m for m in related if m.message_type != "CALL"), None)
    return {
        **_frame_json(frame),
        "request": _frame_json(request_frame) if request_frame else None,
        "response": _frame_json(response_frame) if response_frame else None,
    }
