"""PLACEHOLDER Location data, shared by both OCPI versions.

OCPI requires an address, a position and plug data on every Location. A station the operator
described (stations.site, connectors.spec; location_fields.py) is served with that; only a
station without it is served with these values: any station in the open (development)
admission mode, or one published before Location data existed (migration 0007). They are
deliberately recognisable as "not real" (`unknown`, `00000`, 0°/0°) so a peer or an operator
reading them cannot mistake them for a real address.

CDRs take their address from here too, with the EVSE ID, charging period and totals both
versions build alike while stations carry no EVSE ID and there are no tariffs.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

from chargegate.domain.clock import as_utc, ocpi_datetime
from chargegate.domain.evse import evse_uid_of, location_id_of
from chargegate.settings import Settings
from chargegate.store.models import ChargingSession, Connector, Station

ADDRESS = "unknown"
CITY = "unknown"
POSTAL_CODE = "00000"
# Six decimals: the 2.1.1 regexes demand exactly six (`-?[0-9]{1,2}\.[0-9]{6}`), 2.2.1 five to
# seven, so this one form is valid in both.
LATITUDE = "0.000000"
LONGITUDE = "0.000000"
TIME_ZONE = "Europe/Amsterdam"
# 2.1.1 LocationType: UNKNOWN is the enum's documented default ("not known by the operator");
# OTHER would claim we know it is none of the listed kinds.
LOCATION_TYPE_211 = "UNKNOWN"
# An undescribed connector's plug. The specs define the AC_3_PHASE voltage as line to neutral:
# 230 V on a 400 V grid (400 would make peers compute 3 x 400 V x 32 A = 38 kW for 22 kW).
CONNECTOR_SPEC: dict[str, Any] = {
    "standard": "IEC_62196_T2",
    "format": "SOCKET",
    "power_type": "AC_3_PHASE",
    "max_voltage": 230,
    "max_amperage": 32,
}

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


# --- CDRs -------------------------------------------------------------------------------------

# eMI3 V1.0 Power Outlet ID: an alphanumeric, then up to 30 alphanumerics or "*".
EMI3_OUTLET_MAX = 31
_EMI3_UNSAFE = re.compile(r"[^A-Z0-9]+")


def evse_id(settings: Settings, station_id: str, connector_id: int) -> str:
    """An eMI3 EVSE ID (`NL*CGW*ECP*AMS*01*2`) made from our party and the EVSE uid's parts."""
    # CdrLocation requires an eMI3-compliant evse_id, and station ids may hold characters eMI3
    # forbids ("-", "_", "."), so they become the "*" separator eMI3 allows.
    station = _EMI3_UNSAFE.sub("*", station_id.upper()).strip("*")
    outlet = f"{station}*{connector_id}"
    if not station or len(outlet) > EMI3_OUTLET_MAX:
        # Cutting a long id could make two stations one EVSE ID; a digest keeps them apart.
        digest = hashlib.sha256(station_id.encode()).hexdigest()[:12].upper()
        outlet = f"{digest}*{connector_id}"
    return f"{settings.country_code.upper()}*{settings.party_id.upper()}*E{outlet}"


def cdr_end(session: ChargingSession) -> datetime:
    """The end of a session that has a CDR; a session still running has none."""
    if session.end_date_time is None:
        raise ValueError(f"session {session.id} has not ended, so it has no CDR")
    return session.end_date_time


def cdr_usage(start: datetime, end: datetime, kwh: float) -> dict[str, Any]:
    """charging_periods, total_energy and total_time of a CDR, identical in 2.1.1 and 2.2.1."""
    # OCPI numbers carry at most four decimals.
    energy = round(kwh, 4)
    # A station clock that jumps back can report a stop before the start; a negative duration
    # would make the whole CDR invalid, an empty one only says nothing was measured.
    seconds = max((as_utc(end) - as_utc(start)).total_seconds(), 0.0)
    # Both specs (and GIREVE) define total_time as the whole session, charging or not.
    hours = round(seconds / 3600, 4)
    return {
        # A new period is only required where the cost changes; without tariffs it never does,
        # so one period covers the session. Nothing tells charging from idle time either, so
        # TIME ("time charging") is the whole session and there is no PARKING_TIME.
        "charging_periods": [
            {
                "start_date_time": ocpi_datetime(start),
                "dimensions": [
                    {"type": "ENERGY", "volume": energy},
                    {"type": "TIME", "volume": hours},
                ],
            }
        ],
        "total_energy": energy,
        "total_time": hours,
    }


def location_id(station: Station) -> str:
    """The operator's mapped Location id, or the station's own id."""
    return location_id_of(station.id, station.location_id)


def evse_uid_for(station: Station, connector_id: int, connectors: list[Connector]) -> str:
    """The mapped EVSE uid of that connector, or `{station_id}-{connector_id}`."""
    mapped = next(
        (
            c.evse_uid
            for c in connectors
            if c.station_id == station.id and c.connector_id == connector_id
        ),
        None,
    )
    return evse_uid_of(station.id, connector_id, mapped)
