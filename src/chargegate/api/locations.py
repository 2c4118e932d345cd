"""A station's OCPI Location as operators manage it: its data (address, coordinates, time zone,
plugs), whether it is published, and the import of OCPI Location JSON (docs/security.md#publishing).

Errors: 404 unknown station; 400 invalid data, with `problems` naming each field; 409 a
publication the data is not complete for, with `problems` saying what is missing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Query, Request

from chargegate.domain.location_data import (
    LocationDataError,
    parse_connector_specs,
    parse_site,
    served_as_location,
)
from chargegate.gateway import gateway_of
from chargegate.service.locations import NotPublishable, StationLocation, UnknownStation

from .auth import OperatorScope, ReadScope

router = APIRouter(tags=["Operator locations and publishing"])

# Stored beside the site by the store; shown apart from the data an operator sends back.
_CHANGED = "last_updated"

_LOCATION_EXAMPLE = {
    "site": {
        "name": "Damrak garage",
        "address": "Damrak 1",
        "city": "Amsterdam",
        "postal_code": "1012 LG",
        "country": "NLD",
        "coordinates": {"latitude": "52.376510", "longitude": "4.894870"},
        "time_zone": "Europe/Amsterdam",
        "parking_type": "PARKING_GARAGE",
        "twentyfourseven": True,
    },
    "connectors": {
        "1": {
            "standard": "IEC_62196_T2",
            "format": "SOCKET",
            "power_type": "AC_3_PHASE",
            "max_voltage": 230,
            "max_amperage": 32,
            "max_electric_power": 22000,
            "physical_reference": "1",
        }
    },
}


def location_json(station: StationLocation, ocpp_admission: str) -> dict[str, Any]:
    site = dict(station.site) if station.site else None
    changed = site.pop(_CHANGED, None) if site else None
    return {
        "cpId": station.id,
        "locationId": station.location_id or station.id,
        "published": station.published,
        # What partners see now: also every station in the open (development) mode.
        "servedAsLocation": served_as_location(station.published, ocpp_admission),
        "site": site,
        "connectors": [
            {
                "connectorId": c.connector_id,
                "evseUid": c.evse_uid or f"{station.id}-{c.connector_id}",
                "spec": c.spec,
            }
            for c in station.connectors
        ],
        "lastUpdated": changed,
    }


@contextmanager
def _answers() -> Iterator[None]:
    """The use case's refusals as HTTP answers."""
    try:
        yield
    except UnknownStation as exc:
        raise HTTPException(404, str(exc)) from None
    except LocationDataError as exc:
        raise HTTPException(
            400, {"error": "invalid", "message": str(exc), "problems": exc.problems}
        ) from None
    except NotPublishable as exc:
        raise HTTPException(
            409, {"error": "not_publishable", "message": str(exc), "problems": exc.problems}
        ) from None


@router.get("/stations/{cpId}/location", summary="A station's Location data and publication")
async def get_location(cpId: str, request: Request, key: ReadScope) -> dict[str, Any]:
    gateway = gateway_of(request)
    with _answers():
        station = await gateway.locations.show(cpId)
    return location_json(station, gateway.settings.ocpp_admission)


@router.put(
    "/stations/{cpId}/location",
    summary="Set a station's Location data (site; plugs of the connectors named)",
    description="`site` replaces the site; each connector in `connectors` gets the plug given, "
    "the others keep theirs. Validated whole: nothing is written if any field is wrong.",
)
async def put_location(
    cpId: str,
    request: Request,
    key: OperatorScope,
    body: Annotated[dict[str, Any], Body(examples=[_LOCATION_EXAMPLE])],
) -> dict[str, Any]:
    gateway = gateway_of(request)
    with _answers():
        site, specs = _parse_body(body)
        station = await gateway.locations.set(cpId, site, specs)
    return location_json(station, gateway.settings.ocpp_admission)


def _parse_body(body: dict[str, Any]) -> tuple[Any, Any]:
    problems: list[str] = []
    unknown = sorted(set(body) - {"site", "connectors"})
    problems += [f"{name}: not a field we know (site, connectors)" for name in unknown]
    site = specs = None
    if "site" not in body:
        problems.append("site: required")
    else:
        try:
            site = parse_site(body["site"])
        except LocationDataError as exc:
            problems += exc.problems
    try:
        specs = parse_connector_specs(body.get("connectors", {}))
    except LocationDataError as exc:
        problems += exc.problems
    if problems:
        raise LocationDataError(problems)
    return site, specs


@router.put("/stations/{cpId}/publication", summary="Publish a station as an OCPI Location")
async def publish(cpId: str, request: Request, key: OperatorScope) -> dict[str, Any]:
    gateway = gateway_of(request)
    with _answers():
        station = await gateway.locations.publish(cpId)
    return location_json(station, gateway.settings.ocpp_admission)


@router.delete("/stations/{cpId}/publication", summary="Withdraw a station's OCPI Location")
async def unpublish(cpId: str, request: Request, key: OperatorScope) -> dict[str, Any]:
    gateway = gateway_of(request)
    with _answers():
        station = await gateway.locations.unpublish(cpId)
    return location_json(station, gateway.settings.ocpp_admission)


@router.post(
    "/locations/import",
    summary="Import OCPI Location JSON (2.1.1 or 2.2.1; one object or a list)",
    description="Each Location goes to the station `cpId` names, else to the station its `id` "
    "is (mapped Location id, else station id). Its EVSEs go to the connectors with their EVSE "
    "uid (`match=uid`) or in order (`match=order`: first EVSE to connector 1). All or nothing.",
)
async def import_locations(
    request: Request,
    key: OperatorScope,
    body: Annotated[Any, Body()],
    cpId: str | None = Query(None, description="the station one Location is for"),
    match: Literal["uid", "order"] = Query("uid"),
    publish: bool = Query(False, description="publish them too"),
) -> list[dict[str, Any]]:
    gateway = gateway_of(request)
    with _answers():
        stations = await gateway.locations.import_locations(
            body, station_id=cpId, by_order=match == "order", publish=publish
        )
    return [location_json(s, gateway.settings.ocpp_admission) for s in stations]
