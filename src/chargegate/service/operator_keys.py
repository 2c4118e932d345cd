"""API keys of the operator REST API and their scopes."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any, Protocol

from chargegate.domain.clock import utcnow
from chargegate.domain.tokens import token_hash

if TYPE_CHECKING:
    from chargegate.store.models import OperatorKey

# `operator` may run remote commands and change locks; `read` may only look (records, stored
# configuration, stations, communication log). On the eMSP side `operator` is the help desk (every
# command, UNLOCK_CONNECTOR included) and `driver` acts for EV drivers (no UNLOCK_CONNECTOR).
SCOPES = ("operator", "read", "driver")


class OperatorKeyStore(Protocol):
    async def add(self, values: dict[str, Any]) -> None: ...

    async def live(self, key_hash: str) -> OperatorKey | None:
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

    async def find(self, key: str) -> OperatorKey | None:
        return await self._store.live(token_hash(key))
