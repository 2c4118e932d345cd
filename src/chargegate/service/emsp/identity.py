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
