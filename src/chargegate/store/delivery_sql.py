"""What the delivery worker (delivery/worker.py) reads and writes of the outbox: claiming the
rows that are due with a lease, the peers they go to, what came of sending them, and the
dead letters the operator sees."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, func, or_, select, update

from .command_sql import mark_delivered
from .db import SessionFactory
from .models import Outbox, Party, table_of
from .units import Executor

outbox = table_of(Outbox)

# A failed attempt: the lease is released and the next attempt set; a dead letter (refused too
# often, or past the row's expiry) is not tried again. One row per id (executemany).
_RETRY = (
    update(outbox)
    .where(outbox.c.id == bindparam("row_id"))
    .values(
        attempts=bindparam("new_attempts"),
        refusals=bindparam("new_refusals"),
        lease_until=None,
        last_error=bindparam("error"),
        next_attempt_at=bindparam("next_at"),
    )
)
_GIVE_UP = _RETRY.values(gave_up_at=bindparam("now"))
_PENDING = and_(outbox.c.delivered_at.is_(None), outbox.c.gave_up_at.is_(None))
# A peer answered again: what it is owed and waits on its own backoff is due now.
_DUE_NOW = (
    update(outbox)
    .where(
        _PENDING,
        outbox.c.party_id == bindparam("peer"),
        outbox.c.next_attempt_at > bindparam("now"),
    )
    .values(next_attempt_at=bindparam("now"))
)


async def parties_by_id(sessions: SessionFactory, ids: set[int]) -> dict[int, Party]:
    async with sessions() as s:
        return {p.id: p for p in await s.scalars(select(Party).where(Party.id.in_(ids)))}


async def claim_due(
    sessions: SessionFactory,
    now: datetime,
    lease_until: datetime,
    limit: int,
    in_flight: Mapping[int, int] | None = None,
    per_peer: int | None = None,
) -> list[Outbox]:
    """Leases up to `limit` rows due at `now` until `lease_until`, and returns them by id.

    A row is due when it is neither delivered nor given up, its next attempt has come and no
    unexpired lease holds it. Store-and-forward rows go out one at a time per peer, oldest
    first: only the head of each peer's FIFO queue is eligible. The candidates are read first,
    then leased with one conditional UPDATE whose RETURNING names the rows this worker won
    (another worker, here or on another node, may have leased some of them in between).
    With `per_peer`, a peer gets no more rows than that less its `in_flight` ones: the rest
    wait in the table for a later round, not for a connection (a bulkhead per peer)."""
    pending = and_(Outbox.delivered_at.is_(None), Outbox.gave_up_at.is_(None))
    heads = (
        select(func.min(Outbox.id)).where(pending, Outbox.fifo.is_(True)).group_by(Outbox.party_id)
    )
    busy = [peer for peer, n in (in_flight or {}).items() if per_peer is not None and n >= per_peer]
    async with sessions() as s:
        found = (
            await s.execute(
                select(Outbox.id, Outbox.party_id)
                .where(
                    pending,
                    Outbox.next_attempt_at <= now,
                    or_(Outbox.lease_until.is_(None), Outbox.lease_until < now),
                    or_(Outbox.fifo.is_(False), Outbox.id.in_(heads)),
                    *((Outbox.party_id.not_in(busy),) if busy else ()),
                )
                .order_by(Outbox.id)
                .limit(limit)
            )
        ).all()
        candidates = _within_room(found, in_flight or {}, per_peer)
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


def _within_room(
    found: Iterable[Any], in_flight: Mapping[int, int], per_peer: int | None
) -> list[int]:
    if per_peer is None:
        return [row_id for row_id, _ in found]
    taken: dict[int, int] = {}
    kept: list[int] = []
    for row_id, peer in found:
        n = taken.get(peer, in_flight.get(peer, 0))
        if n < per_peer:
            taken[peer] = n + 1
            kept.append(row_id)
    return kept


@dataclass(frozen=True, slots=True)
class Failure:
    """A row whose attempt failed: its attempt and refusal counts so far, why, and when to try
    again (or, with `give_up`, that it is a dead letter and not tried again)."""

    row_id: int
    attempts: int
    refusals: int
    error: str
    next_attempt_at: datetime
    give_up: bool


def record_outcomes(
    x: Executor,
    delivered: Sequence[int],
    failures: Sequence[Failure],
    now: datetime,
    answered: Sequence[int] = (),
) -> None:
    """Outcomes in one transaction: the acknowledged rows delivered, the others each with
    their own next attempt; everything waiting for the `answered` peers is due now."""
    mark_delivered(x, delivered, now)
    retries = [f for f in failures if not f.give_up]
    x.many(_RETRY, [_failure_values(f) for f in retries])
    given_up = [f for f in failures if f.give_up]
    x.many(_GIVE_UP, [{**_failure_values(f), "now": now} for f in given_up])
    x.many(_DUE_NOW, [{"peer": peer, "now": now} for peer in answered])


async def probe(sessions: SessionFactory, peer: int, now: datetime) -> bool:
    """Make the oldest row waiting for `peer` (and free of a lease) due now, whatever its own
    backoff: one request tells whether the peer is back. False if nothing waits."""
    oldest = (
        select(func.min(Outbox.id))
        .where(
            Outbox.delivered_at.is_(None),
            Outbox.gave_up_at.is_(None),
            Outbox.party_id == peer,
            or_(Outbox.lease_until.is_(None), Outbox.lease_until < now),
        )
        .scalar_subquery()
    )
    async with sessions.begin() as s:
        done = await s.execute(
            update(Outbox)
            .where(Outbox.id == oldest, Outbox.next_attempt_at > now)
            .values(next_attempt_at=now),
            execution_options={"synchronize_session": False},
        )
        waiting = await s.scalar(select(oldest))
    return bool(done.rowcount) or waiting is not None  # type: ignore[attr-defined]


def _failure_values(failure: Failure) -> dict[str, object]:
    return {
        "row_id": failure.row_id,
        "new_attempts": failure.attempts,
        "new_refusals": failure.refusals,
        # PostgreSQL text holds no NUL, and one bad character would fail every outcome
        # written with it.
        "error": failure.error.replace("\x00", "\ufffd"),
        "next_at": failure.next_attempt_at,
    }


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A delivery set aside: what it was, to whom, and why it stopped."""

    id: int
    kind: str
    party_id: int
    peer: str  # country_code/party_id
    url: str
    command_id: str | None
    correlation_id: str | None
    attempts: int
    refusals: int
    last_error: str | None
    created_at: datetime
    gave_up_at: datetime


class DeadLetters:
    """The operator's view of the dead letters (docs/guarantees.md#dead-letters): list them,
    send one again (from a fresh start: tries, refusals and horizon anew) or drop it (it stays
    in the table, marked dropped)."""

    def __init__(self, sessions: SessionFactory, result_horizon: float) -> None:
        self._sessions = sessions
        self._horizon = result_horizon

    async def list(self, limit: int = 100, offset: int = 0) -> list[DeadLetter]:
        async with self._sessions() as s:
            rows = await s.execute(
                select(Outbox, Party.country_code, Party.party_id)
                .join(Party, Party.id == Outbox.party_id)
                .where(_dead())
                .order_by(Outbox.id)
                .offset(offset)
                .limit(limit)
            )
            return [
                DeadLetter(
                    id=row.id,
                    kind=row.kind,
                    party_id=row.party_id,
                    peer=f"{country}/{party}",
                    url=row.url,
                    command_id=row.command_id,
                    correlation_id=row.correlation_id,
                    attempts=row.attempts,
                    refusals=row.refusals,
                    last_error=row.last_error,
                    created_at=row.created_at,
                    gave_up_at=row.gave_up_at,  # type: ignore[arg-type]
                )
                for row, country, party in rows.all()
            ]

    async def retry(self, row_id: int, now: datetime) -> bool:
        """Due now, as if new. A FIFO row goes back to its place by id: it is sent before
        anything queued after it that is still waiting."""
        async with self._sessions.begin() as s:
            expires = await s.scalar(select(Outbox.expires_at).where(Outbox.id == row_id, _dead()))
            done = await s.execute(
                update(Outbox)
                .where(Outbox.id == row_id, _dead())
                .values(
                    gave_up_at=None,
                    attempts=0,
                    refusals=0,
                    lease_until=None,
                    next_attempt_at=now,
                    expires_at=None if expires is None else now + timedelta(seconds=self._horizon),
                ),
                execution_options={"synchronize_session": False},
            )
        return bool(done.rowcount)  # type: ignore[attr-defined]

    async def drop(self, row_id: int, now: datetime) -> bool:
        async with self._sessions.begin() as s:
            done = await s.execute(
                update(Outbox).where(Outbox.id == row_id, _dead()).values(dropped_at=now),
                execution_options={"synchronize_session": False},
            )
        return bool(done.rowcount)  # type: ignore[attr-defined]


def _dead() -> ColumnElement[bool]:
    return and_(
        Outbox.gave_up_at.is_not(None), Outbox.dropped_at.is_(None), Outbox.delivered_at.is_(None)
    )
