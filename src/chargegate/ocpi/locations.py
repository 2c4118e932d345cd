"""Locations module, CPO (Sender) interface: GET list and GET one (object, EVSE, connector)."""

from __future__ import annotations

from types import ModuleType

from fastapi import APIRouter, Request
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from chargegate.gateway import gateway_of
from chargegate.store.models import Connector, Station

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


async def _connectors(s: AsyncSession, station_ids: list[str]) -> dict[str, list[Connector]]:
    by_station: dict[str, list[Connector]] = {sid: [] for sid in station_ids}
    if station_ids:
        rows = await s.scalars(
            select(Connector)
            .where(Connector.station_id.in_(station_ids))
            .order_by(Connector.connector_id)
        )
        for connector in rows:
            by_station[connector.station_id].append(connector)
    return by_station


@router.get("/{version}/locations", summary="List locations (paginated)")
async def list_locations(version: str, request: Request, caller: RegisteredCaller) -> Response:
    objects = objects_for(version)
    page = pagination.page_of(request)
    query = select(Station)
    if page.date_from is not None:
        query = query.where(Station.last_seen >= page.date_from)
    if page.date_to is not None:
        query = query.where(Station.last_seen < page.date_to)
    async with gateway_of(request).sessions() as s:
        total = await s.scalar(select(func.count()).select_from(query.subquery())) or 0
        stations = list(
            await s.scalars(query.order_by(Station.id).offset(page.offset).limit(page.limit))
        )
        connectors = await _connectors(s, [st.id for st in stations])
    settings = gateway_of(request).settings
    data = [objects.location_object(st, connectors[st.id], settings) for st in stations]
    headers = pagination.headers(request, page, total)
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
    async with gateway_of(request).sessions() as s:
        station = await s.scalar(select(Station).where(Station.location_id == location_id))
        if station is None:
            station = await s.scalar(
                select(Station).where(Station.id == location_id, Station.location_id.is_(None))
            )
        if station is None:
            raise OcpiError(
                status.UNKNOWN_LOCATION, f"unknown location {location_id!r}", 404, headers=headers
            )
        connectors = (await _connectors(s, [station.id]))[station.id]
    location = objects.location_object(station, connectors, gateway_of(request).settings)
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
