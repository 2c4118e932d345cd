"""Concurrent lookups of one key share one call.

Why: the peer caches (service/parties.py) expire every few seconds, and under load every
request in flight would miss at once and run the same lookup
(docs/performance.md#single-flight-peer-lookups). Written here
because the caches are ours (their lifetimes, cleared on registration changes); the one
library that coalesces calls (async-lru) would bring its own cache and rules with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._calls: dict[K, asyncio.Future[V]] = {}

    async def run(self, key: K, call: Callable[[], Awaitable[V]]) -> V:
        """`call()`'s result, shared with every caller that asks for `key` meanwhile. A caller
        cancelled while waiting does not cancel the call for the others."""
        flight = self._calls.get(key)
        if flight is None:
            flight = asyncio.ensure_future(call())
            self._calls[key] = flight
            flight.add_done_callback(lambda done: self._landed(key, done))
        return await asyncio.shield(flight)

    def forget(self) -> None:
        """Calls already flying finish for their callers; later ones start afresh."""
        self._calls.clear()

    def _landed(self, key: K, flight: asyncio.Future[V]) -> None:
        if self._calls.get(key) is flight:
            del self._calls[key]
        if not flight.cancelled():
            flight.exception()  # retrieved: every waiter may have been cancelled
