"""Who we are as an eMSP: our own party id, or the CPO's when no separate one is configured."""

from __future__ import annotations

from chargegate.settings import Settings


def our_party(settings: Settings) -> tuple[str, str]:
    return (
        (settings.emsp_country_code or settings.country_code).upper(),
        (settings.emsp_party_id or settings.party_id).upper(),
    )


def our_business_name(settings: Settings) -> str:
    return settings.emsp_business_name or settings.business_name


def emsp_base(settings: Settings) -> str:
    return settings.public_url.rstrip("/") + "/ocpi/emsp"


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
