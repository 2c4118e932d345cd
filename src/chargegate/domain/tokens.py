"""Tokens we issue to peers and API keys: how they are drawn and how we keep them (hashed)."""

from __future__ import annotations

import hashlib
import secrets


def new_token() -> str:
    # 43 URL-safe characters: inside the printable U+0021-U+007E range and string(64).
    # Operators paste tokens into command lines, where a leading '-' reads as an option
    # (argparse refuses `--token-a -x…`); drawing again keeps the full 256 bits of randomness.
    while True:
        token = secrets.token_urlsafe(32)
        if not token.startswith("-"):
            return token


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
