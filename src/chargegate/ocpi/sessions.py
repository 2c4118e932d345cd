"""Sessions module, CPO (Sender) interface: GET list (paginated) of the caller's sessions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import func, select
from starlette.responses import Response

from chargegate.gateway import gateway_of
from chargegate.store.models import ChargingSession, Connector, Station

from . import pagination, status
from .auth import RegisteredCaller
from .envelope import OcpiError, ocpi_response
from .locations import objects_for
from .routing_headers import response_routing_headers

router = APIRouter(prefix="/ocpi/cpo", tags=["OCPI sessions (CPO)"])


@router.get("/{version}/sessions", summary="Sessions of the calling party (paginated)")
async def list_sessions(version: str, request: Request, caller: RegisteredCaller) -> Response:
    objects = objects_for(version)
    page = pagination.page_of(request)
    query = select(ChargingSession).where(ChargingSession.party_id == caller.party.id)
    if page.date_from is not None:
        query = query.where(ChargingSession.last_updated >= page.date_from)
    if page.date_to is not None:
        query = query.where(ChargingSession.last_updated < page.date_to)
    settings = gateway_of(request).settings
    async with gateway_of(request).sessions() as s:
        total = await s.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = list(
            await s.scalars(
                query.order_by(ChargingSession.pk).offset(page.offset).limit(page.limit)
            )
        )
        data = []
        for row in rows:
            station = await s.get(Station, row.station_id)
            if station is None:
                continue
            connectors = list(
                await s.scalars(select(Connector).where(Connector.station_id == station.id))
            )
            data.append(
                objects.session_object(row, station, connectors, settings, party=caller.party)
            )
    headers = pagination.headers(request, page, total)
    headers.update(response_routing_headers(request, caller, version))
    return ocpi_response(data, headers=headers)


@router.get("/{version}/sessions/{session_id}", summary="One session of the calling party")
async def get_session(
    version: str, session_id: str, request: Request, caller: RegisteredCaller
) -> Response:
    objects = objects_for(version)
    headers = response_routing_headers(request, caller, version)
    async with gateway_of(request).sessions() as s:
        row = await s.scalar(
            select(ChargingSession).where(
                ChargingSession.id == session_id, ChargingSession.party_id == caller.party.id
            )
        )
        station = await s.get(Station, row.station_id) if row is not None else None
        if row is None or station is None:
            raise OcpiError(
                status.INVALID_PARAMETERS, f"unknown session {session_id!r}", 404, headers=headers
            )
        connectors = list(
            await s.scalars(select(Connector).where(Connector.station_id == station.id))
        )
    data = objects.session_object(
        row, station, connectors, gateway_of(request).settings, party=caller.party
    )
    return ocpi_response(data, headers=headers)
