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


def connector_number_of(uid: str, station_id: str, case_insensitive: bool) -> int | None:
    """The connector a `{station_id}-{n}` uid names at this station (n >= 1), else None."""
    parsed = parse_evse_uid(uid)
    if parsed is None or parsed[1] < 1:
        return None
    named = parsed[0]
    same = named.lower() == station_id.lower() if case_insensitive else named == station_id
    return parsed[1] if same else None


def location_id_of(station_id: str, mapped: str | None) -> str:
    return mapped or station_id


def evse_uid_of(station_id: str, connector_id: int, mapped: str | None) -> str:
    return mapped or evse_uid(station_id, connector_id)
