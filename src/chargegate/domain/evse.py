"""Station connectors as OCPI EVSEs."""

from __future__ import annotations

# OCPP 1.6 ChargePointStatus and 2.0.1 ConnectorStatus → OCPI EvseStatus. OCPI CHARGING means
# "in use", so the in-transaction states (Preparing … Finishing, Occupied) all map to it.
OCPP_TO_EVSE_STATUS: dict[str, str] = {
    "Available": "AVAILABLE",
    "Preparing": "CHARGING",
    "Charging": "CHARGING",
    "SuspendedEV": "CHARGING",
    "SuspendedEVSE": "CHARGING",
    "Finishing": "CHARGING",
    "Reserved": "RESERVED",
    "Unavailable": "INOPERATIVE",
    "Faulted": "OUTOFORDER",
    # OCPP 2.0.1 ConnectorStatus adds one word; the others it shares with 1.6.
    "Occupied": "CHARGING",
}


def evse_status_of(ocpp_status: str | None) -> str:
    if ocpp_status is None:
        return "UNKNOWN"
    return OCPP_TO_EVSE_STATUS.get(ocpp_status, "UNKNOWN")


def evse_uid(station_id: str, connector_id: int) -> str:
    return f"{station_id}-{connector_id}"


def parse_evse_uid(uid: str) -> tuple[str, int] | None:
    """Split `{station_id}-{connector_id}`; station ids may contain dashes themselves."""
    station_id, sep, connector = uid.rpartition("-")
    if not sep or not station_id or not connector.isdigit():
        return None
    return station_id, int(connector)


# OCPP's connectorId is a JSON integer the schemas leave unbounded; the database keeps it as
# a 32-bit INTEGER, so a larger number names no connector (and must not reach a bind).
MAX_CONNECTOR_ID = 2**31 - 1


def numbered_evse_uid(uid: str) -> tuple[str, int] | None:
    """The station id and connector a `{station_id}-{n}` uid names (1 <= n <= MAX_CONNECTOR_ID),
    else None. Whether that station is the one the command targets is for the caller."""
    parsed = parse_evse_uid(uid)
    if parsed is None or not 1 <= parsed[1] <= MAX_CONNECTOR_ID:
        return None
    return parsed


def location_id_of(station_id: str, mapped: str | None) -> str:
    return mapped or station_id


def evse_uid_of(station_id: str, connector_id: int, mapped: str | None) -> str:
    return mapped or evse_uid(station_id, connector_id)
