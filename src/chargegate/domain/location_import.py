"""An OCPI Location object (2.1.1 or 2.2.1, as a CPO system exports it) read into our Location
data: its site and, per EVSE, the plug of its one connector.

Both versions are read by the same rules: where they name a field differently (2.1.1 Connector
`voltage`/`amperage`, 2.2.1 `max_voltage`/`max_amperage`; 2.1.1 `type`, 2.2.1 `parking_type`)
either name is taken. What we cannot represent is an error, never dropped silently."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .location_data import (
    LOCATION_TYPES_211,
    ConnectorSpec,
    LocationDataError,
    Site,
    parse_connector_spec,
    parse_site,
)

_SITE_FIELDS = ("name", "address", "city", "postal_code", "state", "country", "coordinates",
                "time_zone", "facilities")  # fmt: skip


@dataclass(frozen=True, slots=True)
class ImportedEvse:
    uid: str
    spec: ConnectorSpec


@dataclass(frozen=True, slots=True)
class ImportedLocation:
    location_id: str
    site: Site
    evses: list[ImportedEvse]


def documents_of(data: Any) -> list[Any]:
    """One Location object, or a list of them (an OCPI GET list's `data`, or a whole
    response envelope with `data`)."""
    if isinstance(data, dict) and "data" in data and "status_code" in data:
        data = data["data"]
    if isinstance(data, list):
        return data
    return [data]


def read_location(data: Any, where: str = "location") -> ImportedLocation:
    """One OCPI Location object, or LocationDataError listing every problem in it."""
    if not isinstance(data, dict):
        raise LocationDataError([f"{where}: an OCPI Location object is expected"])
    problems: list[str] = []
    location_id = data.get("id")
    if not isinstance(location_id, str) or not location_id:
        problems.append(f"{where}.id: the Location id is required")
        location_id = ""
    site: Site | None = None
    try:
        site = parse_site(_site_fields(data), f"{where}")
    except LocationDataError as exc:
        problems += exc.problems
    evses: list[ImportedEvse] = []
    raw_evses = data.get("evses") or []
    if not isinstance(raw_evses, list):
        problems.append(f"{where}.evses: a list is expected")
        raw_evses = []
    for index, evse in enumerate(raw_evses):
        try:
            evses.append(_evse(evse, f"{where}.evses[{index}]"))
        except LocationDataError as exc:
            problems += exc.problems
    uids = [e.uid for e in evses]
    problems += [f"{where}.evses: uid {uid!r} is there twice" for uid in _twice(uids)]
    if problems or site is None:
        raise LocationDataError(problems)
    return ImportedLocation(location_id, site, evses)


def _site_fields(data: dict[str, Any]) -> dict[str, Any]:
    site = {key: data[key] for key in _SITE_FIELDS if data.get(key) is not None}
    if data.get("parking_type") is not None:
        site["parking_type"] = data["parking_type"]
    elif data.get("type") in LOCATION_TYPES_211:  # 2.1.1 LocationType
        site["parking_type"] = data["type"]
    opening = data.get("opening_times")
    if isinstance(opening, dict) and opening.get("twentyfourseven") is not None:
        site["twentyfourseven"] = opening["twentyfourseven"]
    return site


def _evse(data: Any, where: str) -> ImportedEvse:
    if not isinstance(data, dict):
        raise LocationDataError([f"{where}: an EVSE object is expected"])
    problems: list[str] = []
    uid = data.get("uid")
    if not isinstance(uid, str) or not uid:
        problems.append(f"{where}.uid: the EVSE uid is required")
    connectors = data.get("connectors")
    if not isinstance(connectors, list) or len(connectors) != 1:
        count = len(connectors) if isinstance(connectors, list) else 0
        # One OCPP connector is one EVSE with one OCPI Connector (the 2.2.1 EVSE note for
        # OCPP 1.x); an EVSE with several plugs has no one connector to describe.
        problems.append(
            f"{where}.connectors: {count} connectors; each EVSE here is one OCPP connector "
            "and must have exactly one"
        )
        raise LocationDataError(problems)
    connector = connectors[0]
    if not isinstance(connector, dict):
        raise LocationDataError([*problems, f"{where}.connectors[0]: an object is expected"])
    spec = {
        "standard": connector.get("standard"),
        "format": connector.get("format"),
        "power_type": connector.get("power_type"),
        "max_voltage": connector.get("max_voltage", connector.get("voltage")),
        "max_amperage": connector.get("max_amperage", connector.get("amperage")),
    }
    if connector.get("max_electric_power") is not None:
        spec["max_electric_power"] = connector["max_electric_power"]
    if data.get("physical_reference") is not None:
        spec["physical_reference"] = data["physical_reference"]
    try:
        parsed = parse_connector_spec(spec, f"{where}.connectors[0]")
    except LocationDataError as exc:
        problems += exc.problems
    if problems:
        raise LocationDataError(problems)
    assert isinstance(uid, str)
    return ImportedEvse(uid, parsed)


def _twice(values: list[str]) -> list[str]:
    seen: set[str] = set()
    twice: set[str] = set()
    for value in values:
        (twice if value in seen else seen).add(value)
    return sorted(twice)
