"""The cap on operator remote requests in flight: a slot is taken before a request is
recorded and given back once the station has answered (cluster-wide with Redis)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from chargegate.cluster.cap import ParallelCap

from .remote_errors import RemoteCommandError


class RequestSlots:
    """The cap on remote requests in flight (cluster-wide with Redis)."""

    def __init__(self, cap: ParallelCap) -> None:
        self.cap = cap

    async def take(self) -> str:
        try:
            slot = await self.cap.acquire()
        except Exception as exc:  # the cap's store (Redis in a cluster) is unreachable
            raise RemoteCommandError(
                "unavailable", f"cannot count requests in flight right now: {exc}"
            ) from exc
        if slot is None:
            raise RemoteCommandError(
                "cap",
                f"at most {self.cap.limit} remote requests may be in flight at once; "
                "retry when one has finished",
            )
        return slot

    async def release(self, slot: str | None) -> None:
        if slot is not None:
            await self.cap.release(slot)

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        slot = await self.take()
        try:
            yield
        finally:
            await self.release(slot)
