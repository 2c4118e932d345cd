"""CDRs module, CPO (Sender) interface: GET list (paginated) and GET one of the caller's CDRs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from chargegate.gateway import gateway_of
from chargegate.service.parties import Caller
from chargegate.store import cdr_queries
from chargegate.store.charging_session_queries import SessionAtStation

from . import pagination, status
from .auth import RegisteredCaller
from .envelope import OcpiError, ocpi_response
from .locations import objects_for
from .routing_headers import response_routing_headers

router = APIRouter(prefix="/ocpi/cpo", tags=["OCPI CDRs (CPO)"])


def _render(
    request: Request, caller: Caller, version: str, closed: SessionAtStation
) -> dict[str, Any]:
    """A CDR's object, from the session it closes."""
    data: dict[str, Any] = objects_for(version).cdr_object(
        closed.session,
        closed.station,
        closed.connectors,
        gateway_of(request).settings,
        party=caller.party,
    )
    return data


@router.get("/{version}/cdrs", summary="CDRs of the calling party (paginated)")
async def list_cdrs(version: str, request: Request, caller: RegisteredCaller) -> Response:
    objects_for(version)
    page = pagination.page_of(request)
    listing = await cdr_queries.party_cdrs_page(
        gateway_of(request).sessions,
        caller.party.id,
        page.date_from,
        page.date_to,
        page.offset,
        page.limit,
    )
    data = [_render(request, caller, version, closed) for closed in listing.items]
    headers = pagination.headers(request, page, listing.total)
    headers.update(response_routing_headers(request, caller, version))
    return ocpi_response(data, headers=headers)


@router.get("/{version}/cdrs/{cdr_id}", summary="One CDR of the calling party")
async def get_cdr(
    version: str, cdr_id: str, request: Request, caller: RegisteredCaller
) -> Response:
    objects_for(version)
    headers = response_routing_headers(request, caller, version)
    closed = await cdr_queries.party_cdr(gateway_of(request).sessions, caller.party.id, cdr_id)
    if closed is None:
        raise OcpiError(status.INVALID_PARAMETERS, f"unknown CDR {cdr_id!r}", 404, headers=headers)
    return ocpi_response(_render(request, caller, version, closed), headers=headers)
