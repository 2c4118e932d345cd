"""OCPI 2.1.1 Location, Session and CDR objects, built from our tables.

Field lists follow mod_locations.md, mod_sessions.md and mod_cdrs.md (release-2.1.1-bugfixes).
The spec's own Session examples are not valid objects (an `evse` key instead of `evses`, alpha-2
country, lower-case enum values, no auth_method), so the tables are followed, not the examples.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chargegate.domain.clock import ocpi_datetime
from chargegate.domain.evse import evse_status_of
from chargegate.ocpi.location_fields import (
    V211,
    connector_fields,
    described,
    location_fields,
    physical_reference,
    site_last_updated,
)
from chargegate.ocpi.placeholders import (
    cdr_end,
    cdr_usage,
    evse_connectors,
    evse_uid_for,
    location_id,
    location_last_updated,
)
from chargegate.settings import Settings
from chargegate.store.models import ChargingSession, Connector, Party, Station

CAPABILITIES = ["REMOTE_START_STOP_CAPABLE", "RESERVABLE", "UNLOCK_CAPABLE"]

# Under OCPP 1.6 each OCPP connector is its own EVSE, so every EVSE has exactly one OCPI
# connector and its id never needs to be anything but "1".
OCPI_CONNECTOR_ID = "1"

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
    plugs = described(station, evse_connectors(station, connectors))
    return _location(
        station,
        [
            _evse(evse_uid_for(station, c.connector_id, plugs), c.ocpp_status, c.updated_at, c)
            for c in plugs
        ],
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


def cdr_object(
    session: ChargingSession,
    station: Station,
    connectors: list[Connector],
    settings: Settings,
    *,
    party: Party | None = None,
) -> dict[str, Any]:
    """The CDR of a completed session, with the Location embedded as in its Session.

    The CDR id is the session id: a session has one CDR, ever. Raises ValueError for a session
    that has not ended. `party` is unused, as in session_object."""
    end = cdr_end(session)
    usage = cdr_usage(session.start_date_time, end, session.kwh)
    # Unlike the Session (start_datetime/end_datetime), the 2.1.1 CDR spells its times
    # start_date_time/stop_date_time.
    body: dict[str, Any] = {
        "id": session.id,
        "start_date_time": ocpi_datetime(session.start_date_time),
        "stop_date_time": ocpi_datetime(end),
        "auth_id": _auth_id(session),
        "auth_method": AUTH_METHOD_211.get(session.auth_method, session.auth_method),
        "location": _session_location(session, station, connectors, settings),
        # meter_id (optional) is left out: we do not store the stations' meter serial numbers.
        "currency": settings.currency,
        "charging_periods": usage["charging_periods"],
        # No tariffs yet, so nothing is charged for; the field is required all the same.
        "total_cost": 0,
        "total_energy": usage["total_energy"],
        "total_time": usage["total_time"],
        # The stop is the session's last change (meter values stop with it), so its stamp is
        # when the CDR came to be; a CDR never changes after that.
        "last_updated": ocpi_datetime(session.last_updated),
    }
    if session.authorization_reference:
        # GIREVE's 2.1.1 extension: the eMSP's authorization, top level, on every CDR too.
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
        evse = _evse(
            evse_uid_for(station, match.connector_id, plugs),
            match.ocpp_status,
            match.updated_at,
            match,
        )
    else:
        # No connector row (yet): still a valid object, with a status that admits we don't know.
        evse = _evse(
            evse_uid_for(station, session.connector_id, plugs), None, station.first_seen, None
        )
    return _location(station, [evse], location_last_updated(station, plugs), settings)


def _location(
    station: Station, evses: list[dict[str, Any]], last_updated: datetime, settings: Settings
) -> dict[str, Any]:
    return {
        "id": location_id(station),
        **location_fields(station, settings, V211),
        "evses": evses,
        "last_updated": ocpi_datetime(site_last_updated(station, last_updated)),
    }


def _evse(
    uid: str, ocpp_status: str | None, updated_at: datetime, connector: Connector | None
) -> dict[str, Any]:
    stamp = ocpi_datetime(updated_at)
    return {
        "uid": uid,
        "status": evse_status_of(ocpp_status),
        "capabilities": list(CAPABILITIES),
        "connectors": [
            {
                "id": OCPI_CONNECTOR_ID,
                **connector_fields(connector, V211),
                "last_updated": stamp,
            }
        ],
        **physical_reference(connector),
        "last_updated": stamp,
    }
