"""Building OCPI command bodies the way an eMSP would, per version."""

from __future__ import annotations

from typing import Any


def token(version: str, uid: str = "TOKEN-001") -> dict[str, Any]:
    if version == "2.1.1":
        return {
            "uid": uid,
            "type": "RFID",
            "auth_id": "NL-EMS-C12345678-X",
            "issuer": "Test eMSP",
            "valid": True,
            "whitelist": "ALLOWED",
            "last_updated": "2026-01-01T00:00:00Z",
        }
    return {
        "country_code": "NL",
        "party_id": "EMS",
        "uid": uid,
        "type": "RFID",
        "contract_id": "NL-EMS-C12345678-X",
        "issuer": "Test eMSP",
        "valid": True,
        "whitelist": "ALLOWED",
        "last_updated": "2026-01-01T00:00:00Z",
    }


def start_session(
    version: str,
    response_url: str,
    location: str,
    evse: str | None = None,
    uid: str = "TOKEN-001",
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "response_url": response_url,
        "token": token(version, uid),
        "location_id": location,
    }
    if evse is not None:
        body["evse_uid"] = evse
    body.update(extra)
    return body


def reserve_now(
    version: str,
    response_url: str,
    location: str,
    reservation_id: str,
    evse: str | None = None,
    expiry: str = "2099-01-01T00:00:00Z",
    uid: str = "TOKEN-001",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "response_url": response_url,
        "token": token(version, uid),
        "expiry_date": expiry,
        "reservation_id": int(reservation_id) if version == "2.1.1" else reservation_id,
        "location_id": location,
    }
    if evse is not None:
        body["evse_uid"] = evse
    return body


def unlock(response_url: str, location: str, evse: str, connector: str = "1") -> dict[str, Any]:
    return {
        "response_url": response_url,
        "location_id": location,
        "evse_uid": evse,
        "connector_id": connector,
    }
