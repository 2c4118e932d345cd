"""API keys of the operator REST API and their scopes."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chargegate.domain.clock import utcnow
from chargegate.domain.tokens import token_hash
from chargegate.store.models import OperatorKey

# `operator` may run remote commands and change locks; `read` may only look (records, stored
# configuration, stations, communication log). On the eMSP side `operator` is the help desk (every
# command, UNLOCK_CONNECTOR included) and `driver` acts for EV drivers (no UNLOCK_CONNECTOR).
SCOPES = ("operator", "read", "driver")


class OperatorKeys:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(self, name: str, scopes: tuple[str, ...] = ("operator", "read")) -> str:
        unknown = set(scopes) - set(SCOPES)
        if unknown or not scopes:
            raise ValueError(f"scopes must be among {', '.join(SCOPES)}")
        key = "cgk_" + secrets.token_urlsafe(32)
        async with self._sessions.begin() as s:
            s.add(
                OperatorKey(
                    name=name,
                    key_hash=token_hash(key),
                    scopes=" ".join(scopes),
                    created_at=utcnow(),
                )
            )
        return key

    async def find(self, key: str) -> OperatorKey | None:
        async with self._sessions() as s:
            return await s.scalar(
                select(OperatorKey).where(
                    OperatorKey.key_hash == token_hash(key), OperatorKey.revoked_at.is_(None)
                )
            )
