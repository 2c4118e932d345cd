"""Sessions module, CPO (Sender) interface: GET list (paginated) of the caller's sessions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from chargegate.gateway import gateway_of
from chargegate.store import charging_session_queries

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
    settings = gateway_of(request).settings
    listing = await charging_session_queries.party_sessions_page(
        gateway_of(request).sessions,
        caller.party.id,
        page.date_from,
        page.date_to,
        page.offset,
        page.limit,
    )
    data = [
        objects.session_object(it.session, it.station, it.connectors, settings, party=caller.party)
        for it in listing.items
    ]
    headers = pagination.headers(request, page, listing.total)
    headers.update(response_routing_headers(request, caller, version))
    return ocpi_response(data, headers=headers)


@router.get("/{version}/sessions/{session_id}", summary="One session of the calling party")
async def get_session(
    version: str, session_id: str, request: Request, caller: RegisteredCaller
) -> Response:
    objects = objects_for(version)
    headers = response_routing_headers(request, caller, version)
    found = await charging_session_queries.party_session(
        gateway_of(request).sessions, caller.party.id, session_id
    )
    if found is None:
        raise OcpiError(
            status.INVALID_PARAMETERS, f"unknown session {session_id!r}", 404, headers=headers
        )
    data = objects.session_object(
        found.session,
        found.station,
        found.connectors,
        gateway_of(request).settings,
        party=caller.party,
    )
    return ocpi_response(data, headers=headers)
