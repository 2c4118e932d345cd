"""PLACEHOLDER Location data, shared by both OCPI versions.

The stations table holds no address or position yet, but OCPI requires them on every Location.
Until it does, these values fill the required fields. They are deliberately recognisable as
"not real" (`unknown`, `00000`, 0°/0°) so a peer or an operator reading them cannot mistake
them for a real address.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chargegate.domain.clock import as_utc
from chargegate.settings import Settings
from chargegate.store.models import Connector, Station

ADDRESS = "unknown"
CITY = "unknown"
POSTAL_CODE = "00000"
# Six decimals: the 2.1.1 regexes demand exactly six (`-?[0-9]{1,2}\.[0-9]{6}`), 2.2.1 five to
# seven, so this one form is valid in both.
LATITUDE = "0.000000"
LONGITUDE = "0.000000"
TIME_ZONE = "Europe/Amsterdam"

# Location.country is ISO 3166-1 alpha-3 while our party's country_code is alpha-2; only the
# countries we deploy in are listed.
COUNTRY_ALPHA3: dict[str, str] = {
    "NL": "NLD",
    "FR": "FRA",
    "DE": "DEU",
    "BE": "BEL",
}
DEFAULT_COUNTRY_ALPHA3 = "NLD"


def country_alpha3(country_code: str) -> str:
    # country_code is a CiString, so "nl" and "NL" are the same party country.
    return COUNTRY_ALPHA3.get(country_code.upper(), DEFAULT_COUNTRY_ALPHA3)


def location_address(settings: Settings) -> dict[str, Any]:
    """The address part of a Location: the fields both versions require, plus time_zone."""
    return {
        "address": ADDRESS,
        "city": CITY,
        "postal_code": POSTAL_CODE,
        "country": country_alpha3(settings.country_code),
        "coordinates": {"latitude": LATITUDE, "longitude": LONGITUDE},
        # Optional in 2.1.1 but required in 2.2.1; sending it in both keeps them alike.
        "time_zone": TIME_ZONE,
    }


def evse_connectors(station: Station, connectors: list[Connector]) -> list[Connector]:
    """The connectors that are OCPI EVSEs, in order."""
    # Connector 0 is the whole charge point in OCPP 1.6, not a place to plug in.
    return sorted(
        (c for c in connectors if c.station_id == station.id and c.connector_id >= 1),
        key=lambda c: c.connector_id,
    )


def location_last_updated(station: Station, evse_connectors: list[Connector]) -> datetime:
    # first_seen, not last_seen: heartbeats move last_seen without changing the Location, and
    # would make every Location look new to a date_from query.
    return max([as_utc(station.first_seen), *(as_utc(c.updated_at) for c in evse_connectors)])
