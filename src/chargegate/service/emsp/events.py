"""Changes of eMSP commands as an ordered log: written in the transaction that made the change,
read by the SSE stream and the webhook worker from a cursor (the last event id they saw).

A reader that moves its cursor past an id must never see a smaller id commit later. SQLite has
one writer at a time, so ids commit in order; on PostgreSQL every transaction that may write
events takes a table lock first (before any row lock, so two writers cannot deadlock)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chargegate.domain.clock import ocpi_datetime, utcnow
from chargegate.domain.emsp_commands import EventKind
from chargegate.store.models import EmspCommand, EmspCommandEvent


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
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, postgres: bool) -> None:
        self._sessions = sessions
        self._postgres = postgres
        # Events written by this process wake its readers at once; other nodes' are found by
        # the readers' periodic poll.
        self.signal = Signal()

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A transaction that may append events; readers are woken once it commits."""
        async with self._sessions.begin() as s:
            if self._postgres:
                await s.execute(text("LOCK TABLE emsp_command_events IN EXCLUSIVE MODE"))
            yield s
        self.signal.notify()

    @staticmethod
    def append(
        s: AsyncSession, command: EmspCommand, kind: EventKind, data: dict[str, Any]
    ) -> None:
        s.add(
            EmspCommandEvent(
                command_id=command.id,
                api_key_id=command.api_key_id,
                kind=kind.value,
                data=data,
                created_at=utcnow(),
            )
        )

    async def after(
        self,
        cursor: int,
        *,
        api_key_id: int | None = None,
        command_id: str | None = None,
        limit: int = 100,
    ) -> list[EmspCommandEvent]:
        """Events past `cursor`, oldest first; `api_key_id` limits them to that key's commands."""
        query = select(EmspCommandEvent).where(EmspCommandEvent.id > cursor)
        if api_key_id is not None:
            query = query.where(EmspCommandEvent.api_key_id == api_key_id)
        if command_id is not None:
            query = query.where(EmspCommandEvent.command_id == command_id)
        async with self._sessions() as s:
            return list(await s.scalars(query.order_by(EmspCommandEvent.id).limit(limit)))

    async def last_id(self) -> int:
        async with self._sessions() as s:
            return int(await s.scalar(select(func.max(EmspCommandEvent.id))) or 0)


def event_payload(event: EmspCommandEvent) -> dict[str, Any]:
    """What the SSE stream and the webhooks send for one event."""
    return {
        "id": event.id,
        "event": event.kind,
        "at": ocpi_datetime(event.created_at),
        "command": event.data,
    }
