"""API keys of the operator REST API and their scopes."""

from __future__ import annotations

import secrets
from typing import Any, Protocol

from chargegate.domain.clock import utcnow
from chargegate.domain.tokens import token_hash

# `operator` may run remote commands and change locks; `read` may only look (records, stored
# configuration, stations, communication log). On the eMSP side `operator` is the help desk (every
# command, UNLOCK_CONNECTOR included) and `driver` acts for EV drivers (no UNLOCK_CONNECTOR).
SCOPES = ("operator", "read", "driver")


class OperatorKeyRow(Protocol):
    """A live API key as the operator API reads it: who asks, and what its scopes allow."""

    @property
    def id(self) -> int: ...

    @property
    def scopes(self) -> str:
        """Space-separated."""
        ...


class OperatorKeyStore(Protocol):
    async def add(self, values: dict[str, Any]) -> None: ...

    async def live(self, key_hash: str) -> OperatorKeyRow | None:
        """The key with this hash, unless it was revoked."""


class OperatorKeys:
    def __init__(self, store: OperatorKeyStore) -> None:
        self._store = store

    async def add(self, name: str, scopes: tuple[str, ...] = ("operator", "read")) -> str:
        unknown = set(scopes) - set(SCOPES)
        if unknown or not scopes:
            raise ValueError(f"scopes must be among {', '.join(SCOPES)}")
        key = "cgk_" + secrets.token_urlsafe(32)
        await self._store.add(
            dict(name=name, key_hash=token_hash(key), scopes=" ".join(scopes), created_at=utcnow())
        )
        return key

    async def find(self, key: str) -> OperatorKeyRow | None:
        return await self._store.live(token_hash(key))
