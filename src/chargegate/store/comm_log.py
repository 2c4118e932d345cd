"""The communication log writer: every OCPP frame, written in batches off the hot path, and
deleted once older than the retention period."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, insert, select

from chargegate import json_text
from chargegate.domain.clock import utcnow
from chargegate.domain.secret_configuration import MASK, mask_passwords, may_hold_password

from .models import OcppMessage, table_of
from .units import Executor, Units, atomic_alone, bulk

log = logging.getLogger(__name__)

MESSAGE_TYPES = {2: "CALL", 3: "CALLRESULT", 4: "CALLERROR"}
_FRAMES = table_of(OcppMessage)
_INSERT = insert(_FRAMES)
# The oldest frames first, a batch at a time: one statement never holds the database long.
_PRUNE = (
    delete(_FRAMES)
    .where(
        _FRAMES.c.id.in_(
            select(_FRAMES.c.id)
            .where(_FRAMES.c.created_at < bindparam("cutoff"))
            .order_by(_FRAMES.c.created_at)
            .limit(bindparam("batch"))
            .scalar_subquery()
        )
    )
    .returning(_FRAMES.c.id)
)
PRUNE_BATCH = 5000
# Seconds between retention runs.
PRUNE_EVERY = 60.0
# Open calls remembered per connection to name their replies: OCPP has one in flight each way.
MAX_OPEN_CALLS = 64


@dataclass(slots=True)
class Frame:
    station_id: str
    direction: str
    message_type: str
    action: str | None
    unique_id: str | None
    payload: Any
    created_at: datetime


def parse_frame(raw: str) -> tuple[str, str | None, str | None, Any]:
    """(message type, unique id, action if a CALL, payload) of an OCPP-J frame, leniently."""
    try:
        msg = json_text.loads(raw)
        kind = MESSAGE_TYPES.get(msg[0], "UNKNOWN")
        unique_id = str(msg[1])
    except (ValueError, TypeError, IndexError, KeyError, RecursionError):
        return "UNPARSABLE", None, None, {"raw": raw[:4000]}
    if kind == "CALL" and len(msg) >= 4:
        return kind, unique_id, str(msg[2]), msg[3]
    if kind == "CALLRESULT" and len(msg) >= 3:
        return kind, unique_id, None, msg[2]
    if kind == "CALLERROR" and len(msg) >= 4:
        details = msg[4] if len(msg) > 4 else {}
        return (
            kind,
            unique_id,
            None,
            {"errorCode": msg[2], "errorDescription": msg[3], "errorDetails": details},
        )
    return kind, unique_id, None, msg[2:] if len(msg) > 2 else None


class StationBudget:
    """Bytes each station may log per minute (a fixed window per station): a station cannot
    fill the log, whatever it sends. Frames beyond the budget are counted, not stored; one log
    line says when a station reaches it and one how many frames were left out."""

    WINDOW = 60.0
    # Stations remembered at most; windows that ended are dropped first.
    MAX_STATIONS = 100_000

    def __init__(self, bytes_per_minute: int) -> None:
        self._limit = bytes_per_minute
        # station -> [window start, bytes logged, frames left out]
        self._windows: dict[str, list[float]] = {}

    def take(self, station_id: str, size: int) -> bool:
        now = time.monotonic()
        window = self._windows.get(station_id)
        if window is None or now - window[0] >= self.WINDOW:
            if window is not None and window[2]:
                log.warning(
                    "communication log: %d frames of station %s were not stored "
                    "(over %d bytes a minute)",
                    int(window[2]),
                    station_id,
                    self._limit,
                )
            if window is None and len(self._windows) >= self.MAX_STATIONS:
                self._forget_ended(now)
            window = self._windows[station_id] = [now, 0.0, 0.0]
        if window[1] + size > self._limit:
            if not window[2]:
                log.warning(
                    "communication log: station %s reached %d bytes this minute; its frames "
                    "are counted, not stored, until the minute ends",
                    station_id,
                    self._limit,
                )
            window[2] += 1
            return False
        window[1] += size
        return True

    def _forget_ended(self, now: float) -> None:
        for station_id, window in list(self._windows.items()):
            if now - window[0] >= self.WINDOW:
                del self._windows[station_id]


class CommunicationLog:
    """Holds frames and inserts them in batches, so logging never waits on the database.

    A batch waits `linger` seconds after its first frame for others to join it, so that at low
    load frames share their writes (docs/performance.md#communication-log-batches). The
    operator's API flushes before it reads, so nothing it lists is late."""

    def __init__(
        self,
        units: Units,
        batch_size: int = 500,
        retention_days: float = 0,
        linger: float = 0.05,
        station_bytes_per_minute: int = 0,
    ) -> None:
        """`retention_days`: what `prune_expired` keeps (0: everything);
        `station_bytes_per_minute`: what one station may write in a minute (0: no cap)."""
        self._units = units
        self._retention = timedelta(days=retention_days)
        # A list and an event rather than a queue: frames not yet taken stay here for `flush`
        # when the writer is cancelled mid-linger.
        self._frames: list[Frame] = []
        self._arrived = asyncio.Event()
        self._batch_size = batch_size
        self._linger = linger
        self._task: asyncio.Task[None] | None = None
        # Held while a batch is written, so that `flush` also waits for a batch the writer
        # task has already taken off the queue but not yet committed.
        self._writing = asyncio.Lock()
        self._budget = StationBudget(station_bytes_per_minute) if station_bytes_per_minute else None

    def record(
        self, station_id: str, direction: str, raw: str, action_of_call: dict[str, str]
    ) -> None:
        """Log one frame. `action_of_call` maps open CALL ids to actions, to name the replies
        (and, in ocpp/connection.py, to tell replies to our calls from unsolicited frames)."""
        kind, unique_id, action, payload = parse_frame(raw)
        if may_hold_password(raw):  # a station's Basic auth password is never kept
            payload = {"raw": MASK} if kind == "UNPARSABLE" else mask_passwords(payload)
        if kind == "CALL" and unique_id is not None and action is not None:
            if len(action_of_call) >= MAX_OPEN_CALLS:
                # Calls never answered (a station's CALL with an unreadable id is answered to
                # "-1"): the oldest goes, so a station cannot grow the table.
                del action_of_call[next(iter(action_of_call))]
            action_of_call[unique_id] = action
        elif unique_id is not None:
            action = action_of_call.pop(unique_id, None)
        if self._budget is not None and not self._budget.take(station_id, len(raw)):
            return
        self._frames.append(
            Frame(station_id, direction, kind, action, unique_id, payload, utcnow())
        )
        self._arrived.set()

    async def prune(self, older_than: datetime, batch: int = PRUNE_BATCH) -> int:
        """Delete frames written before `older_than`, `batch` rows per statement; how many."""
        deleted = 0
        while True:
            count = await self._units.run(_delete_frames, older_than, batch)
            deleted += count
            if count < batch:
                return deleted
            await asyncio.sleep(0)  # what else waits for the database goes between batches

    async def prune_expired(self) -> None:
        if not self._retention:
            return
        deleted = await self.prune(utcnow() - self._retention)
        if deleted:
            log.info(
                "communication log: %d frames older than %g days deleted",
                deleted,
                self._retention.total_seconds() / 86400,
            )

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="communication-log")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def flush(self) -> None:
        """Write what is queued and wait for a write under way: every frame recorded before
        the call is readable after it."""
        while self._frames:
            await self._write(self._drain())
        async with self._writing:
            pass

    def _drain(self) -> list[Frame]:
        batch, self._frames = self._frames[: self._batch_size], self._frames[self._batch_size :]
        return batch

    async def _run(self) -> None:
        while True:
            await self._arrived.wait()
            if len(self._frames) < self._batch_size:
                await asyncio.sleep(self._linger)
            self._arrived.clear()
            batch = self._drain()
            if self._frames:
                self._arrived.set()  # more than a batch: the next one goes at once
            try:
                await self._write(batch)
            except Exception:
                log.exception("could not write %d frames to the communication log", len(batch))
                await asyncio.sleep(1)

    async def _write(self, batch: list[Frame]) -> None:
        if not batch:
            return
        rows = [
            {
                "station_id": f.station_id,
                "direction": f.direction,
                "message_type": f.message_type,
                "action": f.action,
                "unique_id": f.unique_id,
                "payload": f.payload,
                "created_at": f.created_at,
            }
            for f in batch
        ]
        # A unit (one executemany, one trip on SQLite): the ORM's bulk insert, and even Core's
        # per-row parameter building, cost more CPU than the rows themselves.
        async with self._writing:
            await self._units.run(_insert_frames, rows)


@bulk
@atomic_alone
def _insert_frames(x: Executor, rows: list[dict[str, Any]]) -> None:
    x.many(_INSERT, rows)


@bulk
@atomic_alone
def _delete_frames(x: Executor, cutoff: datetime, batch: int) -> int:
    return len(x.rows(_PRUNE, {"cutoff": cutoff, "batch": batch}))
