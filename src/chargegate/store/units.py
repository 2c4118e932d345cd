"""Units of work: a plain function over an `Executor`, run atomically and committed before its
caller hears back.

A unit is written once and runs on either engine, its statements compiled once by SQLAlchemy
(store/compiled_statement.py) and run by the driver. On SQLite it runs with sqlite3 directly, on
the event loop's own thread: one trip for the statements, the Python between them and the
commit, shared by the units that queued meanwhile (see `Units`). On PostgreSQL (asyncpg) it is
one asyncpg transaction on a pooled connection, each statement awaited through SQLAlchemy's
greenlet bridge, as SQLAlchemy's own adapter does, skipping SQLAlchemy's execution layer
(docs/performance.md#postgresql-units-on-asyncpg). Any other driver
goes through SQLAlchemy (`run_sync`). A unit must not await and must not touch anything but its
executor and its arguments.

SQLite has one connection (store/db.py): never run a unit while the same task holds a session or
connection, or it waits for itself.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import asyncpg
from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.sql.base import Executable
from sqlalchemy.util import await_only, greenlet_spawn

from .compiled_statement import CompiledStatement
from .db import BUSY_TIMEOUT_MS, ping_after_idle

log = logging.getLogger(__name__)

# Pooled connections units leave to sessions on PostgreSQL.
SESSION_RESERVE = 2

P = ParamSpec("P")
T = TypeVar("T")


class Executor(Protocol):
    def rows(self, statement: Executable, values: Mapping[str, Any]) -> list[Any]:
        """The statement's rows (attributes named as its columns); [] when it returns none."""

    def many(self, statement: Executable, rows: Iterable[Mapping[str, Any]]) -> None: ...


def first(x: Executor, statement: Executable, values: Mapping[str, Any]) -> Any | None:
    rows = x.rows(statement, values)
    return rows[0] if rows else None


Unit = Callable[Concatenate[Executor, P], T]
F = TypeVar("F", bound=Callable[..., Any])


def atomic_alone(unit: F) -> F:
    """Marks a unit that is atomic without a transaction around it: it runs one statement
    (asyncpg's executemany included, atomic since asyncpg 0.22) or only reads, and cannot fail
    after its write. On PostgreSQL it then runs without BEGIN and COMMIT, two of a small unit's
    three or four round trips; on SQLite without a savepoint of its own in its trip's
    transaction (SQLite undoes a failed statement by itself; an executemany, which it does not
    undo as a whole, is given a savepoint by the executor)."""
    unit.atomic_alone = True  # type: ignore[attr-defined]
    return unit


def bulk(unit: F) -> F:
    """Marks a unit that may write hundreds of rows (the communication log's batches): on
    SQLite its trip runs on aiosqlite's thread so that it does not hold up the event loop
    (docs/performance.md#bulk-units)."""
    unit.bulk = True  # type: ignore[attr-defined]
    return unit


class CoreExecutor:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def rows(self, statement: Executable, values: Mapping[str, Any]) -> list[Any]:
        result = self._connection.execute(statement, dict(values))
        return list(result) if result.returns_rows else []

    def many(self, statement: Executable, rows: Iterable[Mapping[str, Any]]) -> None:
        batch = [dict(values) for values in rows]
        if batch:
            self._connection.execute(statement, batch)


Compiled = dict[tuple[int, Any], CompiledStatement]


class _CompiledExecutor:
    def __init__(self, compiled: Compiled, dialect: Dialect) -> None:
        self._compiled = compiled
        self._dialect = dialect

    def _statement(self, statement: Executable, keys: Iterable[str] | None) -> CompiledStatement:
        # Statements are module constants; an INSERT … VALUES is compiled per set of columns
        # given. An INSERT … SELECT binds what it names (column keys would also reach into an
        # UPDATE in its WITH and set the columns named alike).
        is_insert = (
            getattr(statement, "is_insert", False) and getattr(statement, "select", None) is None
        )
        key = (id(statement), frozenset(keys) if is_insert and keys is not None else None)
        found = self._compiled.get(key)
        if found is None:
            found = CompiledStatement(statement, self._dialect, keys if is_insert else None)
            self._compiled[key] = found
        return found

    def _batch(
        self, statement: Executable, rows: Iterable[Mapping[str, Any]]
    ) -> tuple[str, list[tuple[Any, ...]]] | None:
        """An executemany's SQL and parameter rows; None when there are no rows."""
        batch = list(rows)
        if not batch:
            return None
        compiled = self._statement(statement, batch[0].keys())
        return compiled.sql, [compiled.parameters(values) for values in batch]


class SqliteExecutor(_CompiledExecutor):
    def __init__(self, cursor: sqlite3.Cursor, compiled: Compiled, dialect: Dialect) -> None:
        super().__init__(compiled, dialect)
        self._cursor = cursor
        # True while a unit runs without a savepoint of its own (`atomic_alone`).
        self.alone = False

    def rows(self, statement: Executable, values: Mapping[str, Any]) -> list[Any]:
        compiled = self._statement(statement, values.keys())
        self._cursor.execute(compiled.sql, compiled.parameters(values))
        # RETURNING rows must all be read before the transaction can commit.
        if not self._cursor.description:
            return []
        return [compiled.row(raw) for raw in self._cursor.fetchall()]

    def many(self, statement: Executable, rows: Iterable[Mapping[str, Any]]) -> None:
        batch = self._batch(statement, rows)
        if batch is None:
            return
        if not self.alone:
            self._cursor.executemany(*batch)
            return
        # All rows or none: SQLite undoes only the failing row's statement.
        self._cursor.execute("SAVEPOINT many")
        try:
            self._cursor.executemany(*batch)
        except BaseException:
            self._cursor.execute("ROLLBACK TO many")
            raise
        finally:
            self._cursor.execute("RELEASE many")


class AsyncpgExecutor(_CompiledExecutor):
    """Runs inside `greenlet_spawn`: each statement awaits the asyncpg connection."""

    def __init__(self, connection: Any, compiled: Compiled, dialect: Dialect) -> None:
        super().__init__(compiled, dialect)
        self._connection = connection

    def rows(self, statement: Executable, values: Mapping[str, Any]) -> list[Any]:
        compiled = self._statement(statement, values.keys())
        records = await_only(self._connection.fetch(compiled.sql, *compiled.parameters(values)))
        return [compiled.row(record) for record in records]

    def many(self, statement: Executable, rows: Iterable[Mapping[str, Any]]) -> None:
        batch = self._batch(statement, rows)
        if batch is not None:
            await_only(self._connection.executemany(*batch))


# What PostgreSQL or asyncpg raise when the session itself is gone: class 08 (connection
# exception, asyncpg's "connection was closed in the middle of operation" among them) and the
# shutdown codes of class 57 (a terminated backend, a crash, a server still starting).
# `is_closed()` alone does not tell: the server's FATAL message may reach the caller before
# the socket's end does (seen on CI: AdminShutdownError then ConnectionDoesNotExistError).
_SESSION_GONE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    OSError,
)


def connection_dropped(exc: BaseException, closed: bool) -> bool:
    """The connection a unit failed on is gone: the server ended it or the socket did."""
    return closed or isinstance(exc, _SESSION_GONE)


def connection_survives(exc: BaseException, closed: bool) -> bool:
    """A unit failed with `exc` on a connection: may the connection serve another unit? Only
    when the server reported the error on a session that goes on (a constraint, a
    serialization failure, a cancelled statement). Anything else (a dropped connection, the
    protocol having lost its place, a task cancelled mid-statement) leaves it unusable."""
    return isinstance(exc, asyncpg.PostgresError) and not connection_dropped(exc, closed)


@dataclass(slots=True)
class _Queued:
    unit: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    future: asyncio.Future[Any]


class Units:
    """Runs units of work against one engine.

    On SQLite, units are group-committed: one that arrives while the connection is busy waits
    for the next trip, which runs every unit waiting, each in a savepoint of its own (a unit
    that fails rolls back alone), and commits them together. No caller hears of its unit before
    that commit, so durability is the same as one transaction each; under load there are fewer
    trips, pool checkouts and commits per unit.

    The trip runs on the event loop's thread, not on aiosqlite's: a trip is a few statements on
    a local file, and with synchronous=NORMAL its commit appends to the WAL without fsync, so it
    costs less than the hand-over between threads it replaces
    (docs/performance.md#sqlite-trips-on-the-event-loop). What may take long is kept off the
    loop: a trip with a `bulk` unit, and one that finds the write lock held by another process (a
    CLI command), run on aiosqlite's thread, and the WAL is checkpointed at most every
    `CHECKPOINT_EVERY` seconds from a connection of its own in a worker thread, while trips go
    on, so that SQLite does not copy it inside a commit on the loop
    (docs/performance.md#wal-checkpoints). SQLite's own auto-checkpoint stays on: past 1,000
    pages a commit still checkpoints what is left, which lets the WAL start over.
    """

    # Seconds between checkpoints while units write.
    CHECKPOINT_EVERY = 0.2

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._asyncpg = engine.dialect.driver == "asyncpg"
        # The engine runs a data-modifying WITH (an UPDATE feeding an INSERT in one statement).
        self.modifying_with = engine.dialect.name == "postgresql"
        # Compiled statements must not outlive their statement objects: they are keyed by id().
        self._compiled: Compiled = {}
        self._waiting: list[_Queued] = []
        self._writer: asyncio.Task[None] | None = None
        self._checkpointed_at = 0.0
        self._changes_checkpointed = 0
        self._checkpointing: asyncio.Task[None] | None = None
        self._checkpointer: sqlite3.Connection | None = None
        # Units take pooled connections in the order they asked (see `_run_asyncpg`), and
        # keep those they used (`_held_connection`).
        connections = _unit_connections(engine)
        self._turns = asyncio.Semaphore(max(1, connections))
        self._idle: list[tuple[Any, float]] = []
        # A pool too small to leave sessions their share gets each connection back at once.
        self._keeping = connections > 0
        self._trusted_for = ping_after_idle(engine)
        self._closed = False

    async def run(self, unit: Unit[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._asyncpg:
            return await self._run_asyncpg(unit, *args, **kwargs)
        if not self._sqlite:
            async with self._engine.begin() as conn:
                return await conn.run_sync(lambda c: unit(CoreExecutor(c), *args, **kwargs))
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Queued(unit, args, kwargs, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write(), name="units-writer")
        return await future

    async def close(self) -> None:
        """Waits for the trip and the checkpoint under way, then closes the checkpoints'
        connection and gives the connections units kept back to the pool (before the engine is
        disposed)."""
        while self._writer is not None or self._checkpointing is not None:
            await asyncio.wait([t for t in (self._writer, self._checkpointing) if t is not None])
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        self._closed = True
        while self._idle:
            self._idle.pop()[0].close()

    async def _run_asyncpg(self, unit: Unit[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        # First come, first served: the pool's own queue lets a newcomer take a connection just
        # checked in ahead of those already waiting (asyncio.Queue wakes a waiter, which then
        # finds it taken; docs/performance.md#postgresql-connections).
        async with self._turns:
            proxied = await self._held_connection()
            connection: Any = proxied.driver_connection
            reusable = True
            try:
                executor = AsyncpgExecutor(connection, self._compiled, self._engine.dialect)
                if getattr(unit, "atomic_alone", False):
                    return await greenlet_spawn(lambda: unit(executor, *args, **kwargs))
                async with connection.transaction():
                    result: T = await greenlet_spawn(lambda: unit(executor, *args, **kwargs))
                return result
            except BaseException as exc:
                closed = connection.is_closed()
                if not connection_survives(exc, closed):
                    # As SQLAlchemy does on a disconnect, the pool must not hand this
                    # connection out again.
                    reusable = False
                    proxied.invalidate(exc if isinstance(exc, Exception) else None)
                    proxied.close()
                    if connection_dropped(exc, closed):
                        # A dropped connection is most often a restarted or failed-over
                        # server: those kept idle went with it, and each would fail a unit.
                        self._invalidate_kept()
                raise
            finally:
                if reusable:
                    self._keep(proxied)

    def _keep(self, proxied: Any) -> None:
        if self._closed or not self._keeping:
            proxied.close()
        else:
            self._idle.append((proxied, time.monotonic()))

    def _invalidate_kept(self) -> None:
        while self._idle:
            proxied = self._idle.pop()[0]
            proxied.invalidate()
            proxied.close()

    async def _held_connection(self) -> Any:
        """A connection units keep between them (the most recently used first), or one from
        the pool, saving a checkout and check-in around each unit
        (docs/performance.md#postgresql-connections). One idle longer than the pool would
        trust without a ping goes back to the pool, whose checkout pings it (store/db.py)."""
        while self._idle:
            proxied, since = self._idle.pop()
            if time.monotonic() - since < self._trusted_for:
                return proxied
            proxied.close()
        return await self._engine.raw_connection()

    async def _write(self) -> None:
        batch: list[_Queued] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                proxied = await self._engine.raw_connection()
                try:
                    # The pool's checkout gives the writer the one connection (aiosqlite's,
                    # whose sqlite3 connection and thread SQLAlchemy's adapter also reaches
                    # through these private names).
                    driver: Any = proxied.driver_connection
                    for part in _by_trip(batch):
                        outcomes = await self._trip(driver, part)
                        for queued, (ok, value) in zip(part, outcomes, strict=True):
                            if queued.future.done():
                                continue  # its caller was cancelled; the unit still ran
                            if ok:
                                queued.future.set_result(value)
                            else:
                                queued.future.set_exception(value)
                    batch = []
                    self._checkpoint_when_due(driver._conn)
                finally:
                    proxied.close()
        except BaseException as exc:
            # The trip itself failed (nothing of it is committed): every caller hears so.
            for queued in batch + self._waiting:
                if not queued.future.done():
                    queued.future.set_exception(exc)
            self._waiting = []
            if not isinstance(exc, Exception):
                raise
        finally:
            self._writer = None

    async def _trip(self, driver: Any, batch: list[_Queued]) -> list[tuple[bool, Any]]:
        conn: sqlite3.Connection = driver._conn
        if any(getattr(queued.unit, "bulk", False) for queued in batch):
            return await self._trip_off_loop(driver, batch)
        try:
            # The write lock first, without waiting: if another process holds it, the trip
            # waits on aiosqlite's thread (busy_timeout, store/db.py), not on the loop.
            conn.execute("PRAGMA busy_timeout=0")
            try:
                conn.execute("BEGIN IMMEDIATE")
            finally:
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:  # extended codes included
                raise
            return await self._trip_off_loop(driver, batch)
        return self._run_batch(conn, batch, None)

    async def _trip_off_loop(self, driver: Any, batch: list[_Queued]) -> list[tuple[bool, Any]]:
        """The trip on aiosqlite's thread, where waiting for a lock or the disk costs the event
        loop nothing."""
        outcomes: list[tuple[bool, Any]] = await driver._execute(
            self._run_batch, driver._conn, batch, "BEGIN IMMEDIATE"
        )
        return outcomes

    def _run_batch(
        self, conn: sqlite3.Connection, batch: list[_Queued], begin: str | None
    ) -> list[tuple[bool, Any]]:
        """The units in the open transaction (opened first with `begin` if given), committed."""
        cursor = conn.cursor()
        executor = SqliteExecutor(cursor, self._compiled, self._engine.dialect)
        outcomes: list[tuple[bool, Any]] = []
        try:
            if begin is not None:
                cursor.execute(begin)
            for queued in batch:
                alone = executor.alone = getattr(queued.unit, "atomic_alone", False)
                if not alone:
                    cursor.execute("SAVEPOINT unit")
                try:
                    result = queued.unit(executor, *queued.args, **queued.kwargs)
                except Exception as exc:
                    if not alone:
                        cursor.execute("ROLLBACK TO unit")
                    outcomes.append((False, exc))
                else:
                    outcomes.append((True, result))
                if not alone:
                    cursor.execute("RELEASE unit")
            conn.commit()
            return outcomes
        except BaseException:
            conn.rollback()
            raise
        finally:
            cursor.close()

    def _checkpoint_when_due(self, conn: sqlite3.Connection) -> None:
        now = time.monotonic()
        if self._checkpointing is not None or now - self._checkpointed_at < self.CHECKPOINT_EVERY:
            return
        changes = conn.total_changes
        if changes == self._changes_checkpointed:
            return
        path = self._engine.url.database
        if not path or path == ":memory:":
            return  # no WAL
        self._checkpointed_at, self._changes_checkpointed = now, changes
        if self._checkpointer is None:
            self._checkpointer = sqlite3.connect(path, check_same_thread=False)
        self._checkpointing = asyncio.create_task(
            asyncio.to_thread(_checkpoint, self._checkpointer), name="sqlite-checkpoint"
        )
        self._checkpointing.add_done_callback(self._checkpointed)

    def _checkpointed(self, task: asyncio.Task[None]) -> None:
        self._checkpointing = None
        if not task.cancelled() and task.exception() is not None:
            log.warning("SQLite checkpoint failed: %s", task.exception())


def _unit_connections(engine: AsyncEngine) -> int:
    """How many connections units may hold at once: the pool's size (its overflow, if any,
    left to sessions) but a couple, which sessions (reads, the delivery worker's claims) can
    then always get without waiting behind a queue of units; 0 when the pool is no bigger than
    that couple."""
    size = getattr(engine.pool, "size", None)
    return max(0, size() - SESSION_RESERVE) if callable(size) else 0


def _by_trip(batch: list[_Queued]) -> list[list[_Queued]]:
    """The units waiting, as trips: those on the loop, then the `bulk` ones off it. Together,
    one bulk unit would take every command's unit off the loop with it
    (docs/performance.md#bulk-units)."""
    plain = [queued for queued in batch if not getattr(queued.unit, "bulk", False)]
    if len(plain) == len(batch):
        return [batch]
    heavy = [queued for queued in batch if getattr(queued.unit, "bulk", False)]
    return [part for part in (plain, heavy) if part]


def _checkpoint(conn: sqlite3.Connection) -> None:
    """In a worker thread. PASSIVE: it waits for no reader and no writer."""
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


async def run_in_session(
    session: AsyncSession, unit: Unit[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """A unit inside a session's transaction (its commit is the session's)."""
    return await session.run_sync(lambda s: unit(CoreExecutor(s.connection()), *args, **kwargs))
