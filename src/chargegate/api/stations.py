"""Stations as operators see them: connectivity, connectors with their stable UUIDs, locks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from sqlalchemy import select

from chargegate.domain.clock import ocpi_datetime
from chargegate.gateway import gateway_of
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
    async with gateway_of(request).sessions() as s:
        station = await s.get(Station, station_id)
        if station is None:
            raise HTTPException(404, f"unknown station {station_id}")
        connectors = list(
            await s.scalars(
                select(Connector)
                .where(Connector.station_id == station_id)
                .order_by(Connector.connector_id)
            )
        )
    return await _station_json(request, station, connectors)


@router.get("", summary="All stations with their connectors")
async def list_stations(
    request: Request, key: ReadScope, offset: int = 0, limit: int = 100
) -> list[dict[str, Any]]:
    async with gateway_of(request).sessions() as s:
        stations = list(
            await s.scalars(
                select(Station).order_by(Station.id).offset(offset).limit(min(limit, 500))
            )
        )
        ids = [st.id for st in stations]
        connectors = list(
            await s.scalars(
                select(Connector)
                .where(Connector.station_id.in_(ids))
                .order_by(Connector.connector_id)
            )
        )
    return [
        await _station_json(request, st, [c for c in connectors if c.station_id == st.id])
        for st in stations
    ]


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
