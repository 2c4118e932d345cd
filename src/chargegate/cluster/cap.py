"""The cap on operator remote requests in flight, across nodes (docs/decisions.md#operator-api)."""

from __future__ import annotations

import uuid
from typing import Protocol


class ParallelCap(Protocol):
    limit: int

    async def acquire(self) -> str | None:
        """A slot token, or None when `limit` requests are already in flight."""
        ...

    async def release(self, slot: str) -> None: ...


class LocalCap:
    """In-process slots; a cluster uses RedisCap so the cap holds across nodes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots: set[str] = set()

    async def acquire(self) -> str | None:
        if len(self._slots) >= self.limit:
            return None
        slot = uuid.uuid4().hex
        self._slots.add(slot)
        return slot

    async def release(self, slot: str) -> None:
        self._slots.discard(slot)

    @property
    def in_flight(self) -> int:
        return len(self._slots)
