"""What the delivery worker (delivery/worker.py) reads and writes of the outbox: claiming the
rows that are due with a lease, the peers they go to, and what came of sending them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, func, or_, select, update

from .command_sql import mark_delivered
from .db import SessionFactory
from .models import Outbox, Party, table_of
from .units import Executor

outbox = table_of(Outbox)

# A failed attempt: the lease is released and the next attempt set; past the row's expiry the
# worker gives up on it instead. One row per id (executemany).
_RETRY = (
    update(outbox)
    .where(outbox.c.id == bindparam("row_id"))
    .values(
        attempts=bindparam("new_attempts"),
        lease_until=None,
        last_error=bindparam("error"),
        next_attempt_at=bindparam("next_at"),
    )
)
_GIVE_UP = _RETRY.values(gave_up_at=bindparam("now"))


async def parties_by_id(sessions: SessionFactory, ids: set[int]) -> dict[int, Party]:
    async with sessions() as s:
        return {p.id: p for p in await s.scalars(select(Party).where(Party.id.in_(ids)))}


async def claim_due(
    sessions: SessionFactory, now: datetime, lease_until: datetime, limit: int
) -> list[Outbox]:
    """Leases up to `limit` rows due at `now` until `lease_until`, and returns them by id.

    A row is due when it is neither delivered nor given up, its next attempt has come and no
    unexpired lease holds it. Store-and-forward rows go out one at a time per peer, oldest
    first: only the head of each peer's FIFO queue is eligible. The candidates are read first,
    then leased with one conditional UPDATE whose RETURNING names the rows this worker won
    (another worker, here or on another node, may have leased some of them in between)."""
    pending = and_(Outbox.delivered_at.is_(None), Outbox.gave_up_at.is_(None))
    heads = (
        select(func.min(Outbox.id)).where(pending, Outbox.fifo.is_(True)).group_by(Outbox.party_id)
    )
    async with sessions() as s:
        candidates = list(
            await s.scalars(
                select(Outbox.id)
                .where(
                    pending,
                    Outbox.next_attempt_at <= now,
                    or_(Outbox.lease_until.is_(None), Outbox.lease_until < now),
                    or_(Outbox.fifo.is_(False), Outbox.id.in_(heads)),
                )
                .order_by(Outbox.id)
                .limit(limit)
            )
        )
    if not candidates:
        return []
    async with sessions.begin() as s:
        claimed = list(
            await s.scalars(
                update(Outbox)
                .where(
                    Outbox.id.in_(candidates),
                    Outbox.delivered_at.is_(None),
                    or_(Outbox.lease_until.is_(None), Outbox.lease_until < now),
                )
                .values(lease_until=lease_until)
                .returning(Outbox),
                execution_options={"synchronize_session": False},
            )
        )
    return sorted(claimed, key=lambda row: row.id)


@dataclass(frozen=True, slots=True)
class Failure:
    """A row whose attempt failed: its attempt count so far, why, and when to try again (or,
    with `give_up`, that it is not tried again)."""

    row_id: int
    attempts: int
    error: str
    next_attempt_at: datetime
    give_up: bool


def record_outcomes(
    x: Executor, delivered: Sequence[int], failures: Sequence[Failure], now: datetime
) -> None:
    """One round's outcomes in one transaction: the acknowledged rows delivered, the others
    each with their own next attempt."""
    mark_delivered(x, delivered, now)
    retries = [f for f in failures if not f.give_up]
    x.many(_RETRY, [_failure_values(f) for f in retries])
    given_up = [f for f in failures if f.give_up]
    x.many(_GIVE_UP, [{**_failure_values(f), "now": now} for f in given_up])


def _failure_values(failure: Failure) -> dict[str, object]:
    return {
        "row_id": failure.row_id,
        "new_attempts": failure.attempts,
        "error": failure.error,
        "next_at": failure.next_attempt_at,
    }
