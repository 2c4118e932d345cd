"""The delivery worker: claims due outbox rows, sends them, records the peer's answer.

Rows are claimed with a lease (a conditional UPDATE), so any number of workers, in one process
or many, send each row once at a time; a worker that dies leaves a lease that simply expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any, Protocol

from chargegate import redaction
from chargegate.domain.clock import as_utc, utcnow
from chargegate.ocpi.outgoing import request_headers
from chargegate.settings import Settings
from chargegate.store.command_sql import mark_delivered
from chargegate.store.db import SessionFactory
from chargegate.store.delivery_sql import Failure, claim_due, parties_by_id, record_outcomes
from chargegate.store.models import Outbox, Party
from chargegate.store.units import Units

from .backoff import retry_delay
from .client import PeerClient, SendError

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
    def attempts(self) -> int: ...
    @property
    def expires_at(self) -> datetime | None: ...


class DeliveryWorker:
    # Seconds an acknowledgement waits for others to share its UPDATE (see `_acknowledge`).
    ACK_LINGER = 0.05

    def __init__(
        self,
        settings: Settings,
        sessions: SessionFactory,
        client: PeerClient,
        units: Units,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._client = client
        self._units = units
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._acks: list[int] = []
        self._ack_task: asyncio.Task[None] | None = None

    def notify(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="delivery-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._ack_task is not None:
            await self._ack_task

    async def _run(self) -> None:
        while True:
            try:
                sent = await self.run_once()
            except Exception:
                log.exception("delivery round failed")
                sent = 0
            if sent:
                continue  # more may be due right away
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.delivery_poll_interval)
            self._wake.clear()

    async def run_once(self) -> int:
        rows = await self._claim()
        if not rows:
            return 0
        parties = await self._parties({row.party_id for row in rows})
        errors = await asyncio.gather(
            *(self._deliver(row, parties.get(row.party_id)) for row in rows)
        )
        await self._record(list(zip(rows, errors, strict=True)))
        return len(rows)

    async def deliver_now(self, row: Deliverable, party: Party) -> None:
        """The fast path: send a row its creator leased, without a claim round trip."""
        try:
            error = await self._deliver(row, party)
            if error is None:
                self._acknowledge(row.id)
            else:
                await self._record([(row, error)])
        except Exception:
            # The lease lapses and the worker sends it: nothing is lost.
            log.exception("immediate delivery of %s %s failed", row.kind, row.id)

    def _acknowledge(self, row_id: int) -> None:
        """Group commit of acknowledgements: the ids that arrive within `ACK_LINGER` of the
        first, or while one UPDATE is being written, go together in the next
        (docs/performance.md#delivery-acknowledgements). An acknowledgement lost to a crash
        only means the row is sent again when its lease lapses (results are delivered at least
        once)."""
        self._acks.append(row_id)
        if self._ack_task is None:
            self._ack_task = asyncio.create_task(self._write_acks(), name="delivery-acks")

    async def _write_acks(self) -> None:
        try:
            while self._acks:
                await asyncio.sleep(self.ACK_LINGER)
                ids, self._acks = self._acks, []
                await self._units.run(mark_delivered, ids, utcnow())
        except Exception:
            log.exception("could not record %d deliveries; they will be sent again", len(ids))
        finally:
            self._ack_task = None

    async def _parties(self, ids: set[int]) -> dict[int, Party]:
        return await parties_by_id(self._sessions, ids)

    async def _claim(self) -> list[Outbox]:
        now = utcnow()
        lease = now + timedelta(seconds=self._settings.delivery_lease)
        return await claim_due(self._sessions, now, lease, BATCH)

    async def _deliver(self, row: Deliverable, party: Party | None) -> str | None:
        if party is None or party.token_b is None:
            return "peer is not registered"
        return await self._send(row, party)

    async def _send(self, row: Deliverable, party: Party) -> str | None:
        """None when the peer acknowledged (2xx with status_code 1000), else why not."""
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
            return str(exc)
        if not 200 <= answer.status < 300:
            return f"HTTP {answer.status}: {answer.text()[:200]}"
        try:
            status_code = answer.json().get("status_code")
        except (ValueError, AttributeError):
            return f"HTTP {answer.status} without an OCPI envelope"
        if status_code != 1000:
            return f"OCPI status_code {status_code}: {answer.text()[:200]}"
        return None

    async def _record(self, outcomes: list[tuple[Deliverable, str | None]]) -> None:
        """One transaction for the batch: acknowledged rows in one UPDATE, failures each with
        their own next attempt."""
        now = utcnow()
        delivered = [row.id for row, error in outcomes if error is None]
        failures = [self._failure(row, error, now) for row, error in outcomes if error is not None]
        await self._units.run(record_outcomes, delivered, failures, now)

    def _failure(self, row: Deliverable, error: str, now: datetime) -> Failure:
        attempts = row.attempts + 1
        delay = retry_delay(
            attempts, self._settings.delivery_retry_base, self._settings.delivery_retry_max
        )
        next_at = now + timedelta(seconds=delay)
        give_up = row.expires_at is not None and next_at > as_utc(row.expires_at)
        if give_up:
            log.error(
                "giving up on %s %s to %s after %d attempts: %s",
                row.kind,
                row.id,
                redaction.url(row.url),
                attempts,
                error,
            )
        else:
            log.warning(
                "%s %s to %s failed (attempt %d), retry in %.1fs: %s",
                row.kind,
                row.id,
                redaction.url(row.url),
                attempts,
                delay,
                error,
            )
        return Failure(row.id, attempts, error, next_at, give_up)
