"""The service's OperatorKeyStore (service/operator_keys.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .models import OperatorKey


class SqlOperatorKeyStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(self, values: dict[str, Any]) -> None:
        async with self._sessions.begin() as s:
            s.add(OperatorKey(**values))

    async def live(self, key_hash: str) -> OperatorKey | None:
        async with self._sessions() as s:
            key: OperatorKey | None = await s.scalar(
                select(OperatorKey).where(
                    OperatorKey.key_hash == key_hash, OperatorKey.revoked_at.is_(None)
                )
            )
            return key
