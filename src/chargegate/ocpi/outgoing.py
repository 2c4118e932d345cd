"""Headers on requests we send to a peer (docs/decisions.md#outgoing-headers)."""

from __future__ import annotations

from chargegate.domain.ids import new_id

from .tokens import authorization_header


def request_headers(
    *,
    version: str,
    token: str,
    correlation_id: str | None = None,
    functional: bool = True,
    from_party: tuple[str, str] | None = None,
    to_party: tuple[str, str] | None = None,
) -> dict[str, str]:
    """`functional` is False for credentials/versions, which carry no routing headers."""
    headers = {
        "Authorization": authorization_header(version, token),
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-Request-ID": new_id(),
        "X-Correlation-ID": correlation_id or new_id(),
    }
    if version.startswith("2.2") and functional and from_party and to_party:
        headers["OCPI-from-country-code"], headers["OCPI-from-party-id"] = from_party
        headers["OCPI-to-country-code"], headers["OCPI-to-party-id"] = to_party
    return headers
