"""The Location data the operator set (stations.site, connectors.spec), as each OCPI version
names it; placeholders (placeholders.py) where a station has none, which only a station of the
open (development) mode or one published before Location data existed can be served without.

2.1.1 and 2.2.1 differ here: 2.1.1 has LocationType `type` where 2.2.1 has `parking_type`, no
`state`, fewer facilities, Connector `voltage`/`amperage` where 2.2.1 has `max_voltage`/
`max_amperage`, and no `max_electric_power`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chargegate.domain.clock import as_utc
from chargegate.domain.location_data import FACILITIES_211, LOCATION_TYPES_211
from chargegate.settings import Settings
from chargegate.store.models import Connector, Station

from . import placeholders

V211 = "2.1.1"
V221 = "2.2.1"
# Stored with the site by store/location_store.py: when the operator last changed it.
SITE_CHANGED = "last_updated"


def location_fields(station: Station, settings: Settings, version: str) -> dict[str, Any]:
    """name … time_zone, parking_type / type, facilities, opening_times of the Location."""
    site = station.site
    if not site:
        fields = placeholders.location_address(settings)
        if version == V211:
            fields = {"type": placeholders.LOCATION_TYPE_211, **fields}
        return fields
    fields = {}
    if version == V211:
        parking = site.get("parking_type")
        fields["type"] = (
            parking if parking in LOCATION_TYPES_211 else ("OTHER" if parking else "UNKNOWN")
        )
    if site.get("name"):
        fields["name"] = site["name"]
    fields.update(
        {key: site[key] for key in ("address", "city", "postal_code")},
    )
    if version == V221 and site.get("state"):
        fields["state"] = site["state"]
    fields["country"] = site["country"]
    fields["coordinates"] = dict(site["coordinates"])
    if version == V221 and site.get("parking_type"):
        fields["parking_type"] = site["parking_type"]
    facilities = site.get("facilities") or []
    if version == V211:
        facilities = [f for f in facilities if f in FACILITIES_211]
    if facilities:
        fields["facilities"] = list(facilities)
    fields["time_zone"] = site["time_zone"]
    if site.get("twentyfourseven") is not None:
        fields["opening_times"] = {"twentyfourseven": site["twentyfourseven"]}
    return fields


def cdr_address(station: Station, settings: Settings) -> dict[str, Any]:
    """What a 2.2.1 CdrLocation repeats of the Location (no time_zone there)."""
    fields = location_fields(station, settings, V221)
    return {
        key: fields[key]
        for key in ("name", "address", "city", "postal_code", "state", "country", "coordinates")
        if key in fields
    }


def described(station: Station, connectors: list[Connector]) -> list[Connector]:
    """The EVSEs a Location shows: with Location data, those the operator described (a
    connector the station reported after that stays unpublished until described)."""
    if not station.site:
        return connectors
    return [c for c in connectors if c.spec]


def connector_fields(connector: Connector | None, version: str) -> dict[str, Any]:
    """standard, format, power_type and the ratings of the one OCPI Connector of an EVSE."""
    spec = connector.spec if connector is not None else None
    if not spec:
        spec = placeholders.CONNECTOR_SPEC
    voltage, amperage = (
        ("voltage", "amperage") if version == V211 else ("max_voltage", "max_amperage")
    )
    fields = {
        "standard": spec["standard"],
        "format": spec["format"],
        "power_type": spec["power_type"],
        voltage: spec["max_voltage"],
        amperage: spec["max_amperage"],
    }
    if version == V221 and spec.get("max_electric_power"):
        fields["max_electric_power"] = spec["max_electric_power"]
    return fields


def physical_reference(connector: Connector | None) -> dict[str, Any]:
    spec = connector.spec if connector is not None else None
    if spec and spec.get("physical_reference"):
        return {"physical_reference": spec["physical_reference"]}
    return {}


def site_last_updated(station: Station, evse_updated: datetime) -> datetime:
    """The Location's last_updated: its EVSEs' latest, or the operator's last change of it."""
    changed = (station.site or {}).get(SITE_CHANGED)
    if not changed:
        return evse_updated
    return max(as_utc(evse_updated), as_utc(datetime.fromisoformat(changed.replace("Z", "+00:00"))))
