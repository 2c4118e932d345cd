"""OCPI 2.2.1 Location, Session and CDR objects, built from our tables.

Field lists follow mod_locations.asciidoc, mod_sessions.asciidoc and mod_cdrs.asciidoc
(release-2.2.1-bugfixes).
"""

from __future__ import annotations

from typing import Any

from chargegate.domain.clock import ocpi_datetime
from chargegate.domain.evse import evse_status_of
from chargegate.ocpi.location_fields import (
    V221,
    cdr_address,
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
    evse_id,
    evse_uid_for,
    location_id,
    location_last_updated,
)
from chargegate.settings import Settings
from chargegate.store.models import ChargingSession, Connector, Party, Station

NOT_AVAILABLE = "#NA"
CAPABILITIES = ["REMOTE_START_STOP_CAPABLE", "RESERVABLE", "UNLOCK_CAPABLE"]

# Under OCPP 1.6 each OCPP connector is its own EVSE (the 2.2.1 EVSE note asks exactly this of
# OCPP 1.x CPOs), so every EVSE has one OCPI connector and its id is always "1".
OCPI_CONNECTOR_ID = "1"

# An OCPP idTag with no OCPI token behind it was read at the station, i.e. a card.
DEFAULT_TOKEN_TYPE = "RFID"


def location_object(
    station: Station, connectors: list[Connector], settings: Settings
) -> dict[str, Any]:
    """The station as its own Location, one EVSE per OCPP connector (connector 0 excluded)."""
    plugs = described(station, evse_connectors(station, connectors))
    return {
        "country_code": settings.country_code,
        "party_id": settings.party_id,
        "id": location_id(station),
        # Only published stations are served at all (ocpi/locations.py); publish=false would
        # also need publish_allowed_to, which we have nothing to fill with.
        "publish": True,
        **location_fields(station, settings, V221),
        "evses": [_evse(station, c) for c in plugs],
        "last_updated": ocpi_datetime(
            site_last_updated(station, location_last_updated(station, plugs))
        ),
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
            "location_id": location_id(station),
            # A reservation without an EVSE has none yet: "#NA" (mod_sessions, ReserveNow).
            "evse_uid": (
                evse_uid_for(station, session.connector_id, connectors)
                if session.connector_id
                else NOT_AVAILABLE
            ),
            "connector_id": OCPI_CONNECTOR_ID if session.connector_id else NOT_AVAILABLE,
            "currency": settings.currency,
            "status": session.status,
            "last_updated": ocpi_datetime(session.last_updated),
        }
    )
    return body


def cdr_object(
    session: ChargingSession,
    station: Station,
    connectors: list[Connector],
    settings: Settings,
    *,
    party: Party | None = None,
) -> dict[str, Any]:
    """The CDR of a completed session, its place given as a CdrLocation.

    The CDR id is the session id: a session has one CDR, ever. Raises ValueError for a session
    that has not ended. `party` names the token's owner as in session_object; `connectors` is
    unused (CdrLocation carries no EVSE status)."""
    end = cdr_end(session)
    body: dict[str, Any] = {
        "country_code": settings.country_code,
        "party_id": settings.party_id,
        "id": session.id,
        "start_date_time": ocpi_datetime(session.start_date_time),
        "end_date_time": ocpi_datetime(end),
        # Optional only for a CPO without a Sessions module; we push every Session.
        "session_id": session.id,
        "cdr_token": _cdr_token(session, settings, party),
        "auth_method": session.auth_method,
    }
    if session.authorization_reference:
        body["authorization_reference"] = session.authorization_reference
    usage = cdr_usage(session.start_date_time, end, session.kwh)
    body.update(
        {
            "cdr_location": _cdr_location(session, station, connectors, settings),
            # meter_id (optional) is left out: we do not store the stations' meter serial numbers.
            "currency": settings.currency,
            "charging_periods": usage["charging_periods"],
            # No tariffs yet, so nothing is charged for; Price requires excl_vat all the same,
            # and incl_vat is optional.
            "total_cost": {"excl_vat": 0},
            "total_energy": usage["total_energy"],
            "total_time": usage["total_time"],
            # The stop is the session's last change (meter values stop with it), so its stamp
            # is when the CDR came to be; a CDR never changes after that.
            "last_updated": ocpi_datetime(session.last_updated),
        }
    )
    return body


def _cdr_location(
    session: ChargingSession, station: Station, connectors: list[Connector], settings: Settings
) -> dict[str, Any]:
    plug = next(
        (
            c
            for c in connectors
            if c.station_id == station.id and c.connector_id == session.connector_id
        ),
        None,
    )
    described_plug = connector_fields(plug, V221)
    return {
        "id": location_id(station),
        **cdr_address(station, settings),
        "evse_uid": evse_uid_for(station, session.connector_id, connectors),
        # Required here though optional on the Location's EVSE: CdrLocation needs an eMI3 id.
        "evse_id": evse_id(settings, station.id, session.connector_id),
        "connector_id": OCPI_CONNECTOR_ID,
        "connector_standard": described_plug["standard"],
        "connector_format": described_plug["format"],
        "connector_power_type": described_plug["power_type"],
    }


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
        "uid": evse_uid_for(station, connector.connector_id, [connector]),
        "status": evse_status_of(connector.ocpp_status),
        "capabilities": list(CAPABILITIES),
        "connectors": [
            {
                "id": OCPI_CONNECTOR_ID,
                **connector_fields(connector, V221),
                "last_updated": stamp,
            }
        ],
        **physical_reference(connector),
        "last_updated": stamp,
    }
