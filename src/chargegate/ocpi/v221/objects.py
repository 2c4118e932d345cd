"""OCPI 2.2.1 Location and Session objects, built from our tables.

Field lists follow mod_locations.asciidoc, mod_sessions.asciidoc and the CdrToken class of
mod_cdrs.asciidoc (release-2.2.1-bugfixes).
"""

from __future__ import annotations

from typing import Any

from chargegate.domain.clock import ocpi_datetime
from chargegate.domain.evse import evse_status_of, evse_uid
from chargegate.ocpi.placeholders import evse_connectors, location_address, location_last_updated
from chargegate.settings import Settings
from chargegate.store.models import ChargingSession, Connector, Party, Station

CAPABILITIES = ["REMOTE_START_STOP_CAPABLE", "RESERVABLE", "UNLOCK_CAPABLE"]

# Under OCPP 1.6 each OCPP connector is its own EVSE (the 2.2.1 EVSE note asks exactly this of
# OCPP 1.x CPOs), so every EVSE has one OCPI connector and its id is always "1".
OCPI_CONNECTOR_ID = "1"
CONNECTOR_STANDARD = "IEC_62196_T2"
CONNECTOR_FORMAT = "SOCKET"
POWER_TYPE = "AC_3_PHASE"
# The spec defines max_voltage as "line to neutral for AC_3_PHASE": 230 V on a 400 V
# three-phase grid. Sending 400 would make peers compute 3 x 400 V x 32 A = 38 kW for 22 kW.
MAX_VOLTAGE = 230
MAX_AMPERAGE = 32

# An OCPP idTag with no OCPI token behind it was read at the station, i.e. a card.
DEFAULT_TOKEN_TYPE = "RFID"


def location_object(
    station: Station, connectors: list[Connector], settings: Settings
) -> dict[str, Any]:
    """The station as its own Location, one EVSE per OCPP connector (connector 0 excluded)."""
    plugs = evse_connectors(station, connectors)
    return {
        "country_code": settings.country_code,
        "party_id": settings.party_id,
        "id": station.id,
        # No station is private today; a non-published Location would also need
        # publish_allowed_to, which we have nothing to fill with.
        "publish": True,
        **location_address(settings),
        "evses": [_evse(station, c) for c in plugs],
        "last_updated": ocpi_datetime(location_last_updated(station, plugs)),
    }


def session_object(
    session: ChargingSession,
    station: Station,
    connectors: list[Connector],
    settings: Settings,
    *,
    party: Party | None = None,
) -> dict[str, Any]:
    """The Session, pointing at its Location/EVSE/Connector by id.

    `party` is the eMSP the session belongs to; it names the token's owner in cdr_token when
    the stored token does not. `connectors` is unused here (2.2.1 does not embed the
    Location); it is accepted so both versions' functions can be called alike."""
    body: dict[str, Any] = {
        "country_code": settings.country_code,
        "party_id": settings.party_id,
        "id": session.id,
        "start_date_time": ocpi_datetime(session.start_date_time),
    }
    if session.end_date_time is not None:
        body["end_date_time"] = ocpi_datetime(session.end_date_time)
    # OCPI numbers carry at most four decimals.
    body["kwh"] = round(session.kwh, 4)
    body["cdr_token"] = _cdr_token(session, settings, party)
    body["auth_method"] = session.auth_method
    if session.authorization_reference:
        body["authorization_reference"] = session.authorization_reference
    body.update(
        {
            "location_id": station.id,
            "evse_uid": evse_uid(station.id, session.connector_id),
            "connector_id": OCPI_CONNECTOR_ID,
            "currency": settings.currency,
            "status": session.status,
            "last_updated": ocpi_datetime(session.last_updated),
        }
    )
    return body


def _cdr_token(session: ChargingSession, settings: Settings, party: Party | None) -> dict[str, Any]:
    token = session.token or {}
    country_code = _text(token, "country_code")
    party_id = _text(token, "party_id")
    # CdrToken requires the token owner's country_code and party_id, but a 2.1.1 token carries
    # neither. Then the eMSP the session belongs to owns it; failing that the card is local to
    # the station, i.e. ours. The pair is taken from one source so it never names two parties.
    if country_code is None or party_id is None:
        if party is not None:
            country_code, party_id = party.country_code, party.party_id
        else:
            country_code, party_id = settings.country_code, settings.party_id
    return {
        "country_code": country_code,
        "party_id": party_id,
        "uid": _text(token, "uid") or session.id_tag,
        "type": _text(token, "type") or DEFAULT_TOKEN_TYPE,
        # A 2.1.1 token names the contract auth_id; 2.2.1 renamed it contract_id.
        "contract_id": _text(token, "contract_id") or _text(token, "auth_id") or session.id_tag,
    }


def _text(token: dict[str, Any], key: str) -> str | None:
    value = token.get(key)
    return value if isinstance(value, str) and value else None


def _evse(station: Station, connector: Connector) -> dict[str, Any]:
    stamp = ocpi_datetime(connector.updated_at)
    return {
        "uid": evse_uid(station.id, connector.connector_id),
        "status": evse_status_of(connector.ocpp_status),
        "capabilities": list(CAPABILITIES),
        "connectors": [
            {
                "id": OCPI_CONNECTOR_ID,
                "standard": CONNECTOR_STANDARD,
                "format": CONNECTOR_FORMAT,
                "power_type": POWER_TYPE,
                "max_voltage": MAX_VOLTAGE,
                "max_amperage": MAX_AMPERAGE,
                "last_updated": stamp,
            }
        ],
        "last_updated": stamp,
    }
