"""An outbox row as the service builds it; the store writes it inside the transaction that
decided what to send."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chargegate.domain.clock import utcnow


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A row just written, as the fast path sends it: a plain copy (an ORM instance costs
    several times as much to build, and this one is never written back)."""

    id: int
    kind: str
    party_id: int
    method: str
    url: str
    body: dict[str, Any]
    ocpi_version: str
    correlation_id: str | None
    command_id: str | None
    fifo: bool
    attempts: int
    refusals: int
    next_attempt_at: datetime
    lease_until: datetime | None
    expires_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    gave_up_at: datetime | None
    dropped_at: datetime | None
    last_error: str | None


def outbox_values(
    *,
    kind: str,
    party_id: int,
    party_version: str | None,
    method: str,
    url: str,
    body: dict[str, Any],
    correlation_id: str | None,
    command_id: str | None = None,
    fifo: bool = False,
    horizon: float | None = None,
    lease_seconds: float | None = None,
) -> dict[str, Any]:
    """An outbox row, every column given. `lease_seconds`: the caller sends it itself right
    after the commit (the fast path); the worker only takes it over if that lease lapses, e.g.
    because this process died."""
    now = utcnow()
    return dict(
        kind=kind,
        party_id=party_id,
        method=method,
        url=url,
        body=body,
        ocpi_version=party_version or "2.2.1",
        correlation_id=correlation_id,
        command_id=command_id,
        fifo=fifo,
        attempts=0,
        refusals=0,
        next_attempt_at=now,
        lease_until=now + timedelta(seconds=lease_seconds) if lease_seconds else None,
        expires_at=now + timedelta(seconds=horizon) if horizon is not None else None,
        created_at=now,
        delivered_at=None,
        gave_up_at=None,
        dropped_at=None,
        last_error=None,
    )
