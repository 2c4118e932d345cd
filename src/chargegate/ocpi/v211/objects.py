"""OCPI 2.1.1 Location and Session objects, built from our tables.

Field lists follow mod_locations.md and mod_sessions.md (release-2.1.1-bugfixes). The spec's own
Session examples are not valid objects (an `evse` key instead of `evses`, alpha-2 country,
lower-case enum values, no auth_method), so the tables are followed, not the examples.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chargegate.domain.clock import ocpi_datetime
from chargegate.domain.evse import evse_status_of, evse_uid
from chargegate.ocpi.placeholders import evse_connectors, location_address, location_last_updated
from chargegate.settings import Settings
from chargegate.store.models import ChargingSession, Connector, Party, Station

# The station table says nothing about the site; UNKNOWN is the enum's documented default
# ("not known by the operator"), OTHER would claim we know it is none of the listed kinds.
LOCATION_TYPE = "UNKNOWN"

CAPABILITIES = ["REMOTE_START_STOP_CAPABLE", "RESERVABLE", "UNLOCK_CAPABLE"]

# Under OCPP 1.6 each OCPP connector is its own EVSE, so every EVSE has exactly one OCPI
# connector and its id never needs to be anything but "1".
OCPI_CONNECTOR_ID = "1"
CONNECTOR_STANDARD = "IEC_62196_T2"
CONNECTOR_FORMAT = "SOCKET"
POWER_TYPE = "AC_3_PHASE"
# The spec defines voltage as "line to neutral for AC_3_PHASE": 230 V on a 400 V three-phase
# grid. Sending 400 would make peers compute 3 x 400 V x 32 A = 38 kW for a 22 kW socket.
VOLTAGE = 230
AMPERAGE = 32

# 2.1.1 AuthMethod has only AUTH_REQUEST and WHITELIST. A session started by a command was
# authorised by the eMSP, which is what AUTH_REQUEST says (GIREVE's StartSession examples
# use it too).
AUTH_METHOD_211: dict[str, str] = {"COMMAND": "AUTH_REQUEST"}

# 2.1.1 SessionStatus has no RESERVATION; PENDING ("not yet started, might never become
# active") is the state that still holds for a reserved EVSE.
SESSION_STATUS_211: dict[str, str] = {"RESERVATION": "PENDING"}


def location_object(
    station: Station, connectors: list[Connector], settings: Settings
) -> dict[str, Any]:
    """The station as its own Location, one EVSE per OCPP connector (connector 0 excluded)."""
    plugs = evse_connectors(station, connectors)
    return _location(
        station,
        [_evse(station, c.connector_id, c.ocpp_status, c.updated_at) for c in plugs],
        location_last_updated(station, plugs),
        settings,
    )


def session_object(
    session: ChargingSession,
    station: Station,
    connectors: list[Connector],
    settings: Settings,
    *,
    party: Party | None = None,
) -> dict[str, Any]:
    """The Session with its Location embedded, reduced to the EVSE the session is on.

    `party` is unused here (2.1.1 names the token only by auth_id); it is accepted so both
    versions' functions can be called alike."""
    body: dict[str, Any] = {
        "id": session.id,
        "start_datetime": ocpi_datetime(session.start_date_time),
    }
    if session.end_date_time is not None:
        body["end_datetime"] = ocpi_datetime(session.end_date_time)
    body.update(
        {
            # OCPI numbers carry at most four decimals.
            "kwh": round(session.kwh, 4),
            "auth_id": _auth_id(session),
            "auth_method": AUTH_METHOD_211.get(session.auth_method, session.auth_method),
            "location": _session_location(session, station, connectors, settings),
            "currency": settings.currency,
            "status": SESSION_STATUS_211.get(session.status, session.status),
            "last_updated": ocpi_datetime(session.last_updated),
        }
    )
    if session.authorization_reference:
        # GIREVE's 2.1.1 extension: echo the eMSP's authorization, top level, on every Session.
        body["authorization_id"] = session.authorization_reference
    return body


def _auth_id(session: ChargingSession) -> str:
    token = session.token or {}
    # A token stored from a 2.2.1 request has contract_id where 2.1.1 has auth_id; both name
    # the driver's contract, which is what Session.auth_id refers to.
    for key in ("auth_id", "contract_id"):
        value = token.get(key)
        if isinstance(value, str) and value:
            return value
    return session.id_tag


def _session_location(
    session: ChargingSession, station: Station, connectors: list[Connector], settings: Settings
) -> dict[str, Any]:
    plugs = evse_connectors(station, connectors)
    match = next((c for c in plugs if c.connector_id == session.connector_id), None)
    if match is not None:
        evse = _evse(station, match.connector_id, match.ocpp_status, match.updated_at)
    else:
        # No connector row (yet): still a valid object, with a status that admits we don't know.
        evse = _evse(station, session.connector_id, None, station.first_seen)
    return _location(station, [evse], location_last_updated(station, plugs), settings)


def _location(
    station: Station, evses: list[dict[str, Any]], last_updated: datetime, settings: Settings
) -> dict[str, Any]:
    return {
        "id": station.id,
        "type": LOCATION_TYPE,
        **location_address(settings),
        "evses": evses,
        "last_updated": ocpi_datetime(last_updated),
    }


def _evse(
    station: Station, connector_id: int, ocpp_status: str | None, updated_at: datetime
) -> dict[str, Any]:
    stamp = ocpi_datetime(updated_at)
    return {
        "uid": evse_uid(station.id, connector_id),
        "status": evse_status_of(ocpp_status),
        "capabilities": list(CAPABILITIES),
        "connectors": [
            {
                "id": OCPI_CONNECTOR_ID,
                "standard": CONNECTOR_STANDARD,
                "format": CONNECTOR_FORMAT,
                "power_type": POWER_TYPE,
                "voltage": VOLTAGE,
                "amperage": AMPERAGE,
                "last_updated": stamp,
            }
        ],
        "last_updated": stamp,
    }
