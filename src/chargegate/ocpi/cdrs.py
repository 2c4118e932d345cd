"""CDRs module, CPO (Sender) interface: GET list (paginated) and GET one of the caller's CDRs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from chargegate.gateway import gateway_of
from chargegate.service.parties import Caller
from chargegate.service.pushes import station_and_connectors
from chargegate.store.models import Cdr, ChargingSession

from . import pagination, status
from .auth import RegisteredCaller
from .envelope import OcpiError, ocpi_response
from .locations import objects_for
from .routing_headers import response_routing_headers

router = APIRouter(prefix="/ocpi/cpo", tags=["OCPI CDRs (CPO)"])


async def _render(
    s: AsyncSession, request: Request, caller: Caller, version: str, cdr: Cdr
) -> dict[str, Any]:
    session = await s.get(ChargingSession, cdr.session_pk)
    assert session is not None
    station, connectors = await station_and_connectors(s, session.station_id)
    data: dict[str, Any] = objects_for(version).cdr_object(
        session, station, connectors, gateway_of(request).settings, party=caller.party
    )
    return data


@router.get("/{version}/cdrs", summary="CDRs of the calling party (paginated)")
async def list_cdrs(version: str, request: Request, caller: RegisteredCaller) -> Response:
    objects_for(version)
    page = pagination.page_of(request)
    query = select(Cdr).where(Cdr.party_id == caller.party.id)
    if page.date_from is not None:
        query = query.where(Cdr.created_at >= page.date_from)
    if page.date_to is not None:
        query = query.where(Cdr.created_at < page.date_to)
    async with gateway_of(request).sessions() as s:
        total = await s.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = list(
            await s.scalars(
                query.order_by(Cdr.created_at, Cdr.id).offset(page.offset).limit(page.limit)
            )
        )
        data = [await _render(s, request, caller, version, cdr) for cdr in rows]
    headers = pagination.headers(request, page, total)
    headers.update(response_routing_headers(request, caller, version))
    return ocpi_response(data, headers=headers)


@router.get("/{version}/cdrs/{cdr_id}", summary="One CDR of the calling party")
async def get_cdr(
    version: str, cdr_id: str, request: Request, caller: RegisteredCaller
) -> Response:
    objects_for(version)
    headers = response_routing_headers(request, caller, version)
    async with gateway_of(request).sessions() as s:
        cdr = await s.scalar(select(Cdr).where(Cdr.id == cdr_id, Cdr.party_id == caller.party.id))
        if cdr is None:
            raise OcpiError(
                status.INVALID_PARAMETERS, f"unknown CDR {cdr_id!r}", 404, headers=headers
            )
        data = await _render(s, request, caller, version, cdr)
    return ocpi_response(data, headers=headers)
