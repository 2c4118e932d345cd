"""Writing to the outbox, always inside the transaction that decided what to send."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from chargegate.domain.clock import utcnow
from chargegate.store.command_sql import insert_outbox
from chargegate.store.models import Outbox, Party


async def enqueue(
    session: AsyncSession,
    *,
    kind: str,
    party: Party,
    method: str,
    url: str,
    body: dict[str, Any],
    correlation_id: str | None,
    command_id: str | None = None,
    fifo: bool = False,
    horizon: float | None = None,
    lease_seconds: float | None = None,
) -> Outbox:
    """`lease_seconds`: the caller sends it itself right after the commit (the fast path); the
    worker only takes it over if that lease lapses, e.g. because this process died.

    Inserted at once (Core, on the transaction's connection), so rows of one transaction keep
    the order they were queued in; the returned row is a detached copy with its id."""
    now = utcnow()
    values: dict[str, Any] = dict(
        kind=kind,
        party_id=party.id,
        method=method,
        url=url,
        body=body,
        ocpi_version=party.ocpi_version or "2.2.1",
        correlation_id=correlation_id,
        command_id=command_id,
        fifo=fifo,
        attempts=0,
        next_attempt_at=now,
        lease_until=now + timedelta(seconds=lease_seconds) if lease_seconds else None,
        expires_at=now + timedelta(seconds=horizon) if horizon is not None else None,
        created_at=now,
        delivered_at=None,
        gave_up_at=None,
        last_error=None,
    )
    row_id = await insert_outbox(await session.connection(), values)
    return Outbox(id=row_id, **values)
