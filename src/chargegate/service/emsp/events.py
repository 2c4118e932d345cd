"""Changes of eMSP commands as an ordered log: written in the transaction that made the change,
read by the SSE stream and the webhook worker from a cursor (the last event id they saw).

A reader that moves its cursor past an id must never see a smaller id commit later. SQLite has
one writer at a time, so ids commit in order; on PostgreSQL every transaction that may write
events takes a table lock first, before any row lock, so two writers cannot deadlock
(store/emsp_commands_sql.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

from chargegate.domain.clock import ocpi_datetime

from .records import CommandEvent
from .store_ports import CommandReads, CommandStore, CommandWrites


class Signal:
    """Wakes every waiter at once. Take `current()` before reading, then `wait` on it, so a
    notification between the read and the wait is not missed."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def current(self) -> asyncio.Event:
        return self._event

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    @staticmethod
    async def wait(event: asyncio.Event, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)


class EmspEvents:
    """The command store's transactions and event log, with a signal that wakes this process's
    readers (the SSE streams, the webhook worker) once a transaction that may append events
    commits; other nodes' events are found by the readers' periodic poll."""

    def __init__(self, store: CommandStore) -> None:
        self._store = store
        self.signal = Signal()

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[CommandWrites]:
        """A transaction that may append events; readers are woken once it commits."""
        async with self._store.writing() as tx:
            yield tx
        self.signal.notify()

    def reading(self) -> AbstractAsyncContextManager[CommandReads]:
        return self._store.reading()

    async def after(
        self,
        cursor: int,
        *,
        api_key_id: int | None = None,
        command_id: str | None = None,
        limit: int = 100,
    ) -> list[CommandEvent]:
        """Events past `cursor`, oldest first; `api_key_id` limits them to that key's commands."""
        return await self._store.events_after(
            cursor, api_key_id=api_key_id, command_id=command_id, limit=limit
        )

    async def last_id(self) -> int:
        return await self._store.last_event_id()


def event_payload(event: CommandEvent) -> dict[str, Any]:
    """What the SSE stream and the webhooks send for one event."""
    return {
        "id": event.id,
        "event": event.kind,
        "at": ocpi_datetime(event.created_at),
        "command": event.data,
    }
