"""The delivery worker: claims due outbox rows, sends them, records the peer's answer.

Rows are claimed with a lease (a conditional UPDATE), so any number of workers, in one process
or many, send each row once at a time; a worker that dies leaves a lease that simply expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from chargegate import redaction
from chargegate.domain.clock import as_utc, utcnow
from chargegate.ocpi.outgoing import request_headers
from chargegate.settings import Settings
from chargegate.store.command_sql import mark_delivered
from chargegate.store.db import SessionFactory
from chargegate.store.delivery_sql import (
    Failure,
    claim_due,
    parties_by_id,
    probe,
    record_outcomes,
)
from chargegate.store.models import Outbox, Party
from chargegate.store.units import Units

from .backoff import retry_delay
from .client import PeerClient, SendError, origin_of_url

log = logging.getLogger(__name__)

BATCH = 100


class Deliverable(Protocol):
    """What sending a row reads of it: a claimed ORM row, or the fast path's plain copy."""

    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def party_id(self) -> int: ...
    @property
    def method(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def body(self) -> dict[str, Any]: ...
    @property
    def ocpi_version(self) -> str: ...
    @property
    def correlation_id(self) -> str | None: ...
    @property
    def command_id(self) -> str | None: ...
    @property
    def attempts(self) -> int: ...
    @property
    def refusals(self) -> int: ...
    @property
    def expires_at(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an attempt failed, and whether the peer refused the item itself (`permanent`: it
    would refuse it again) rather than failed to take anything (down, slow, overloaded)."""

    error: str
    permanent: bool = False


# 4xx answers that say nothing about the item: credentials (401), the peer's own time-out
# (408) and rate limit (429) pass; retrying may succeed.
_TRANSIENT_4XX = frozenset({401, 408, 429})


class DeliveryWorker:
    """Sends due rows, each on its own: a row's failure (whatever raised) is recorded for that
    row alone, and a slow peer holds only its own requests (docs/guarantees.md#delivery)."""

    # Seconds an outcome waits for others to share its transaction (see `_acknowledge`).
    ACK_LINGER = 0.05

    def __init__(
        self,
        settings: Settings,
        sessions: SessionFactory,
        client: PeerClient,
        units: Units,
        on_dead_letter: Callable[[Deliverable], None] | None = None,
    ) -> None:
        """`on_dead_letter` is called once per row set aside (the metric's hook)."""
        self._settings = settings
        self._sessions = sessions
        self._client = client
        self._units = units
        self._on_dead_letter = on_dead_letter
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._acks: list[int] = []
        self._failures: list[Failure] = []
        self._answered: set[int] = set()
        self._ack_task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._in_flight: dict[int, int] = {}  # party id -> rows the worker is sending
        # Peers whose last attempt failed (not refused): party id -> when to probe next
        # (monotonic). Only this process's view; the rows in the database are the truth.
        self._failing: dict[int, float] = {}

    def notify(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="delivery-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self._sending):
            task.cancel()  # its lease lapses and the row is sent again: nothing is lost
        await asyncio.gather(*self._sending, return_exceptions=True)
        if self._ack_task is not None:
            await self._ack_task

    async def _run(self) -> None:
        while True:
            try:
                await self._probe_failing_peers()
                claimed = await self.run_once()
            except Exception:
                log.exception("delivery round failed")
                claimed = 0
            if claimed:
                continue  # more may be due right away
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._idle_wait())
            self._wake.clear()

    def _idle_wait(self) -> float:
        wait = self._settings.delivery_poll_interval
        if self._failing:
            wait = min(wait, max(min(self._failing.values()) - time.monotonic(), 0.0))
        return wait

    async def run_once(self) -> int:
        """Claim what is due and start sending each row on its own; returns how many were
        claimed (each finishes and is recorded in its own time)."""
        rows = await self._claim()
        if not rows:
            return 0
        parties = await self._parties({row.party_id for row in rows})
        for row in rows:
            self._in_flight[row.party_id] = self._in_flight.get(row.party_id, 0) + 1
            task = asyncio.create_task(self._send_claimed(row, parties.get(row.party_id)))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        return len(rows)

    async def _send_claimed(self, row: Deliverable, party: Party | None) -> None:
        try:
            self._outcome(row, await self._deliver(row, party))
        finally:
            left = self._in_flight.get(row.party_id, 1) - 1
            if left:
                self._in_flight[row.party_id] = left
            else:
                self._in_flight.pop(row.party_id, None)
            self._wake.set()  # a peer under its cap may take more

    async def deliver_now(self, row: Deliverable, party: Party) -> None:
        """The fast path: send a row its creator leased, without a claim round trip."""
        try:
            self._outcome(row, await self._deliver(row, party))
        except Exception:
            # The lease lapses and the worker sends it: nothing is lost.
            log.exception("immediate delivery of %s %s failed", row.kind, row.id)

    def _outcome(self, row: Deliverable, refusal: Refusal | None) -> None:
        if refusal is None:
            if self._failing and self._failing.pop(row.party_id, None) is not None:
                self._answered.add(row.party_id)  # the peer is back: its waiting rows go now
            self._acknowledge(row.id)
            return
        self._failures.append(self._failure(row, refusal, utcnow()))
        self._write_soon()

    def _acknowledge(self, row_id: int) -> None:
        """Group commit of outcomes: the ids that arrive within `ACK_LINGER` of the
        first, or while one UPDATE is being written, go together in the next
        (docs/performance.md#delivery-acknowledgements). An acknowledgement lost to a crash
        only means the row is sent again when its lease lapses (results are delivered at least
        once)."""
        self._acks.append(row_id)
        self._write_soon()

    def _write_soon(self) -> None:
        if self._ack_task is None:
            self._ack_task = asyncio.create_task(self._write_acks(), name="delivery-acks")

    async def _write_acks(self) -> None:
        ids: list[int] = []
        try:
            while self._acks or self._failures or self._answered:
                await asyncio.sleep(self.ACK_LINGER)
                ids, self._acks = self._acks, []
                failures, self._failures = self._failures, []
                answered, self._answered = sorted(self._answered), set()
                if failures or answered:
                    await self._units.run(record_outcomes, ids, failures, utcnow(), answered)
                else:  # the hot path: one UPDATE, no transaction around it
                    await self._units.run(mark_delivered, ids, utcnow())
                if answered:
                    self._wake.set()
        except Exception:
            log.exception("could not record %d deliveries; they will be sent again", len(ids))
        finally:
            self._ack_task = None

    async def _probe_failing_peers(self) -> None:
        """Send one waiting row of each failing peer whose probe is due, whatever that row's
        own backoff says: recovery takes at most `delivery_peer_probe` seconds, however long
        the outage was (docs/guarantees.md#delivery)."""
        if not self._failing:
            return
        now_mono = time.monotonic()
        for peer, at in list(self._failing.items()):
            if at > now_mono:
                continue
            self._failing[peer] = now_mono + self._settings.delivery_peer_probe
            if not await probe(self._sessions, peer, utcnow()):
                self._failing.pop(peer, None)  # nothing waits for it any more

    async def _parties(self, ids: set[int]) -> dict[int, Party]:
        return await parties_by_id(self._sessions, ids)

    async def _claim(self) -> list[Outbox]:
        now = utcnow()
        lease = now + timedelta(seconds=self._settings.delivery_lease)
        per_peer = self._settings.delivery_peer_connections
        return await claim_due(self._sessions, now, lease, BATCH, self._in_flight, per_peer)

    async def _deliver(self, row: Deliverable, party: Party | None) -> Refusal | None:
        """None when the peer acknowledged. Never raises for the row: whatever goes wrong
        with one row (a URL the resolver cannot encode, a body, a peer) is that row's failure."""
        if party is None or party.token_b is None:
            return Refusal("peer is not registered")
        try:
            return await self._send(row, party)
        except Exception as exc:
            log.warning(
                "%s %s to %s: %s", row.kind, row.id, redaction.url(row.url), type(exc).__name__
            )
            return Refusal(f"{type(exc).__name__}: {exc}"[:500])

    async def _send(self, row: Deliverable, party: Party) -> Refusal | None:
        headers = request_headers(
            version=row.ocpi_version,
            token=party.token_b or "",
            correlation_id=row.correlation_id,
            from_party=(self._settings.country_code, self._settings.party_id),
            to_party=(party.country_code, party.party_id),
        )
        try:
            answer = await self._client.send(
                row.method,
                row.url,
                row.body,
                headers,
                timeout=self._settings.delivery_http_timeout,
            )
        except SendError as exc:
            return Refusal(str(exc))
        if not 200 <= answer.status < 300:
            refused = 400 <= answer.status < 500 and answer.status not in _TRANSIENT_4XX
            return Refusal(f"HTTP {answer.status}: {answer.text()[:200]}", refused)
        try:
            status_code = answer.json().get("status_code")
        except (ValueError, AttributeError):
            return Refusal(f"HTTP {answer.status} without an OCPI envelope")
        if status_code != 1000:
            # 2xxx: the peer says the request itself is wrong (OCPI 2.2.1 part 5).
            refused = isinstance(status_code, int) and 2000 <= status_code < 3000
            return Refusal(f"OCPI status_code {status_code}: {answer.text()[:200]}", refused)
        return None

    def _failure(self, row: Deliverable, refusal: Refusal, now: datetime) -> Failure:
        attempts = row.attempts + 1
        refusals = row.refusals + (1 if refusal.permanent else 0)
        delay = retry_delay(
            attempts, self._settings.delivery_retry_base, self._settings.delivery_retry_max
        )
        next_at = now + timedelta(seconds=delay)
        refused_for_good = refusals >= self._settings.delivery_dead_letter_after
        expired = row.expires_at is not None and next_at > as_utc(row.expires_at)
        if not refusal.permanent and row.party_id not in self._failing:
            self._failing[row.party_id] = time.monotonic() + self._settings.delivery_peer_probe
        if refused_for_good or expired:
            self._dead_letter(row, attempts, refusal, "refused" if refused_for_good else "expired")
        else:
            log.warning(
                "%s %s to %s failed (attempt %d), retry in %.1fs: %s",
                row.kind,
                row.id,
                redaction.url(row.url),
                attempts,
                delay,
                refusal.error,
            )
        return Failure(
            row.id, attempts, refusals, refusal.error, next_at, refused_for_good or expired
        )

    def _dead_letter(self, row: Deliverable, attempts: int, refusal: Refusal, why: str) -> None:
        """One WARNING per dead letter, naming no secret: the peer's origin, the row and the
        command or object it carries, and the HTTP or OCPI status (not the peer's text)."""
        log.warning(
            "dead letter: %s %s (%s) to %s, %s after %d attempts: %s",
            row.kind,
            row.id,
            _what(row),
            origin_of_url(row.url),
            why,
            attempts,
            refusal.error.split(":", 1)[0],
        )
        if self._on_dead_letter is not None:
            self._on_dead_letter(row)  # the metric's hook (issue 22)


def _what(row: Deliverable) -> str:
    """The command a result answers, or the Session or CDR a push carries (and its command)."""
    if row.command_id is not None:
        return f"command {row.command_id}"
    object_id = row.body.get("id") if isinstance(row.body, dict) else None
    return f"{row.kind.lower()} {object_id or '-'}, command {row.correlation_id or '-'}"
