"""Locations module, CPO (Sender) interface: GET list and GET one (object, EVSE, connector)."""

from __future__ import annotations

from types import ModuleType

from fastapi import APIRouter, Request
from starlette.responses import Response

from chargegate.domain.location_data import every_station_served
from chargegate.gateway import gateway_of
from chargegate.store import station_queries

from . import pagination, status
from .auth import RegisteredCaller
from .envelope import OcpiError, ocpi_response
from .routing_headers import response_routing_headers
from .v211 import objects as objects211
from .v221 import objects as objects221

router = APIRouter(prefix="/ocpi/cpo", tags=["OCPI locations (CPO)"])

OBJECTS: dict[str, ModuleType] = {"2.1.1": objects211, "2.2.1": objects221}


def objects_for(version: str) -> ModuleType:
    module = OBJECTS.get(version)
    if module is None:
        raise OcpiError(status.UNSUPPORTED_VERSION, f"unsupported version {version!r}", 404)
    return module


@router.get("/{version}/locations", summary="List locations (paginated)")
async def list_locations(version: str, request: Request, caller: RegisteredCaller) -> Response:
    objects = objects_for(version)
    page = pagination.page_of(request)
    settings = gateway_of(request).settings
    listing = await station_queries.locations_page(
        gateway_of(request).sessions,
        page.date_from,
        page.date_to,
        page.offset,
        page.limit,
        published_only=not every_station_served(settings.ocpp_admission),
    )
    data = [objects.location_object(it.station, it.connectors, settings) for it in listing.items]
    headers = pagination.headers(request, page, listing.total)
    headers.update(response_routing_headers(request, caller, version))
    return ocpi_response(data, headers=headers)


@router.get("/{version}/locations/{location_id}", summary="One location")
@router.get("/{version}/locations/{location_id}/{evse_uid}", summary="One EVSE")
@router.get("/{version}/locations/{location_id}/{evse_uid}/{connector_id}", summary="One connector")
async def get_location(
    version: str,
    location_id: str,
    request: Request,
    caller: RegisteredCaller,
    evse_uid: str | None = None,
    connector_id: str | None = None,
) -> Response:
    objects = objects_for(version)
    headers = response_routing_headers(request, caller, version)
    # An unpublished station is answered exactly as an unknown Location (docs/security.md).
    found = await station_queries.location(
        gateway_of(request).sessions,
        location_id,
        published_only=not every_station_served(gateway_of(request).settings.ocpp_admission),
    )
    if found is None:
        raise OcpiError(
            status.UNKNOWN_LOCATION, f"unknown location {location_id!r}", 404, headers=headers
        )
    location = objects.location_object(
        found.station, found.connectors, gateway_of(request).settings
    )
    if evse_uid is None:
        return ocpi_response(location, headers=headers)
    evse = next((e for e in location.get("evses", []) if e["uid"] == evse_uid), None)
    if evse is None:
        raise OcpiError(status.UNKNOWN_LOCATION, f"unknown EVSE {evse_uid!r}", 404, headers=headers)
    if connector_id is None:
        return ocpi_response(evse, headers=headers)
    connector = next((c for c in evse.get("connectors", []) if c["id"] == connector_id), None)
    if connector is None:
        raise OcpiError(
            status.UNKNOWN_LOCATION, f"unknown connector {connector_id!r}", 404, headers=headers
        )
    return ocpi_response(connector, headers=headers)
