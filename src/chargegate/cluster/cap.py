"""The cap on operator remote requests in flight (seed 004: ten at once)."""

from __future__ import annotations

from typing import Protocol


class ParallelCap(Protocol):
    limit: int

    async def try_acquire(self) -> bool: ...

    async def release(self) -> None: ...


class LocalCap:
    """In-process counter; a cluster uses a shared one so the cap holds across nodes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._in_flight = 0

    async def try_acquire(self) -> bool:
        if self._in_flight >= self.limit:
            return False
        self._in_flight += 1
        return True

    async def release(self) -> None:
        self._in_flight = max(self._in_flight - 1, 0)

    @property
    def in_flight(self) -> int:
        return self._in_flight
