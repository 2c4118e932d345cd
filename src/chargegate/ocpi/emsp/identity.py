"""The OCPI 2.2.1 routing headers our eMSP role puts on its answers."""

from __future__ import annotations

from chargegate.service.emsp.identity import our_party
from chargegate.settings import Settings


def response_routing_headers(
    settings: Settings, version: str, peer_party: tuple[str | None, str | None]
) -> dict[str, str]:
    """2.2.1 answers of functional modules go TO the calling peer, FROM our eMSP role."""
    country_code, party_id = peer_party
    if version != "2.2.1" or not country_code or not party_id:
        return {}
    ours = our_party(settings)
    return {
        "OCPI-from-country-code": ours[0],
        "OCPI-from-party-id": ours[1],
        "OCPI-to-country-code": country_code,
        "OCPI-to-party-id": party_id,
    }
