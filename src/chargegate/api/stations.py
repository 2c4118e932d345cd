"""Stations as operators see them: connectivity, connectors with their stable UUIDs, locks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request

from chargegate.domain.clock import ocpi_datetime
from chargegate.gateway import gateway_of
from chargegate.store import station_queries
from chargegate.store.listing import MAX_OFFSET
from chargegate.store.models import Connector, Station

from .auth import OperatorScope, ReadScope

router = APIRouter(prefix="/stations", tags=["Operator stations and locks"])


async def _station_json(
    request: Request, station: Station, connectors: list[Connector]
) -> dict[str, Any]:
    return {
        "cpId": station.id,
        "online": await gateway_of(request).router.is_connected(station.id),
        "ocppVersion": station.ocpp_version,
        "vendor": station.vendor,
        "model": station.model,
        "locked": station.locked,
        # Admission (api/station_admission.py): whether and how it may connect.
        "registered": station.registered,
        "disabled": station.disabled,
        "hasPassword": station.password_hash is not None,
        "lastSeen": ocpi_datetime(station.last_seen),
        "connectors": [
            {
                "connectorId": c.connector_id,
                "uuid": c.uuid,
                "status": c.ocpp_status,
                "errorCode": c.error_code,
                "locked": c.locked,
            }
            for c in connectors
            if c.connector_id > 0
        ],
    }


async def _load(request: Request, station_id: str) -> dict[str, Any]:
    found = await station_queries.station(gateway_of(request).sessions, station_id)
    if found is None:
        raise HTTPException(404, f"unknown station {station_id}")
    return await _station_json(request, found.station, found.connectors)


@router.get("", summary="All stations with their connectors")
async def list_stations(
    request: Request,
    key: ReadScope,
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(100, ge=1, description="at most 500 are returned"),
) -> list[dict[str, Any]]:
    stations = await station_queries.stations_page(
        gateway_of(request).sessions, offset, min(limit, 500)
    )
    return [await _station_json(request, it.station, it.connectors) for it in stations]


@router.get("/{cpId}", summary="One station")
async def get_station(cpId: str, request: Request, key: ReadScope) -> dict[str, Any]:
    return await _load(request, cpId)


@router.put("/{cpId}/lock", summary="Lock a station permanently (no remote or OCPI starts)")
async def lock_station(cpId: str, request: Request, key: OperatorScope) -> dict[str, Any]:
    await gateway_of(request).remote_commands.set_station_lock(cpId, True)
    return await _load(request, cpId)


@router.delete("/{cpId}/lock", summary="Unlock a station")
async def unlock_station(cpId: str, request: Request, key: OperatorScope) -> dict[str, Any]:
    await gateway_of(request).remote_commands.set_station_lock(cpId, False)
    return await _load(request, cpId)


@router.put("/{cpId}/connectors/{cpConnectorUuid}/lock", summary="Lock one connector")
async def lock_connector(
    cpId: str, cpConnectorUuid: str, request: Request, key: OperatorScope
) -> dict[str, Any]:
    await gateway_of(request).remote_commands.set_connector_lock(cpId, cpConnectorUuid, True)
    return await _load(request, cpId)


@router.delete("/{cpId}/connectors/{cpConnectorUuid}/lock", summary="Unlock one connector")
async def unlock_connector_lock(
    cpId: str, cpConnectorUuid: str, request: Request, key: OperatorScope
) -> dict[str, Any]:
    await gateway_of(request).remote_commands.set_connector_lock(cpId, cpConnectorUuid, False)
    return await _load(request, cpId)
