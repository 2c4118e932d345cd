"""2.2.1 OCPI-from/to headers on answers of functional modules (transport_and_format)."""

from __future__ import annotations

from starlette.requests import Request

from chargegate.gateway import gateway_of
from chargegate.service.parties import Caller


def response_routing_headers(request: Request, caller: Caller, version: str) -> dict[str, str]:
    """A direct response goes TO the requesting party, FROM us."""
    if version != "2.2.1":
        return {}
    settings = gateway_of(request).settings
    return {
        "OCPI-from-country-code": settings.country_code,
        "OCPI-from-party-id": settings.party_id,
        "OCPI-to-country-code": caller.party.country_code,
        "OCPI-to-party-id": caller.party.party_id,
    }
