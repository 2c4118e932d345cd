"""The Authorization header: `Token <token>`, Base64-encoded in 2.2.1, plain before."""

from __future__ import annotations

import base64


def authorization_header(version: str, token: str) -> str:
    if version.startswith("2.2"):
        return "Token " + base64.b64encode(token.encode()).decode()
    return f"Token {token}"


def candidates_from_header(value: str | None) -> list[str]:
    """The tokens a header may carry: as sent, and Base64-decoded when it decodes cleanly.

    2.2.1 requires Base64, but deployed peers still send plain tokens (spec NOTE), so both are
    tried; a token is only accepted if it matches one we issued."""
    if not value:
        return []
    scheme, _, raw = value.strip().partition(" ")
    if scheme.lower() != "token" or not raw.strip():
        return []
    raw = raw.strip()
    found = [raw]
    try:
        decoded = base64.b64decode(raw, validate=True).decode()
    except ValueError:  # not Base64 (binascii.Error), not ASCII, or not UTF-8 inside
        return found
    decoded = decoded.rstrip("\n")  # the spec's own examples encode a trailing newline
    if decoded and decoded.isprintable() and decoded != raw:
        found.append(decoded)
    return found
