"""Engine and session factory for SQLite (embedded default) and PostgreSQL, and migrations."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import stat
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, TypeAlias

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from chargegate import json_text

from . import secret_column
from .secret_box import SecretBox
from .sqlite_driver import OneTripDBAPI

log = logging.getLogger(__name__)
_AIOSQLITE = logging.getLogger("aiosqlite")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


# How long SQLite waits for another process's write lock.
BUSY_TIMEOUT_MS = 30_000

# A pooled PostgreSQL connection idle longer than this is pinged before it is handed out.
PING_AFTER_IDLE = 10.0
_PING_AFTER_IDLE_OF: weakref.WeakKeyDictionary[Engine, float] = weakref.WeakKeyDictionary()


def sqlite_file(url: str) -> Path | None:
    """The database file of an SQLite URL; None for an in-memory one or another engine."""
    if not url.startswith("sqlite"):
        return None
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _private_file(path: Path) -> None:
    """The database file created 0600 before SQLite creates it with the umask's mode (0644
    as a rule); SQLite gives its -wal and -shm files the database file's mode. An existing
    file open to every user loses that access, with a warning; one open to its group only is
    left so (a backup group is a choice) and warned about."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return
    except FileExistsError:
        pass
    except OSError:
        return  # no such directory, say: SQLite's own error says it better
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o007:
        with contextlib.suppress(OSError):
            os.chmod(path, mode & ~0o007)
        log.warning(
            "database %s was readable by every user (mode %o): now %o", path, mode, mode & ~0o007
        )
    elif mode & 0o070:
        log.warning("database %s is readable by its group (mode %o)", path, mode)


def make_engine(
    url: str,
    ping_after_idle: float = PING_AFTER_IDLE,
    pool_size: int = 40,
    max_overflow: int = 0,
    secrets: SecretBox | None = None,
) -> AsyncEngine:
    """`pool_size` and `max_overflow` apply to PostgreSQL; SQLite has one connection.
    `secrets` seals and opens the Secret columns (store/secret_column.py); an engine without
    one cannot write them."""
    engine = _make_engine(url, ping_after_idle, pool_size, max_overflow)
    if secrets is not None:
        secret_column.attach(engine.dialect, secrets)
    return engine


def _make_engine(
    url: str, ping_after_idle: float, pool_size: int, max_overflow: int
) -> AsyncEngine:
    if url.startswith("sqlite"):
        # aiosqlite's DEBUG lines print every statement with its parameters: response_url
        # references, and the bodies we send. No log line may carry those (docs/security.md).
        _AIOSQLITE.setLevel(max(logging.INFO, _AIOSQLITE.level))
        database = sqlite_file(url)
        if database is not None:
            _private_file(database)
        engine = create_async_engine(
            url,
            # The units' writer uses the connection on the loop's thread (store/units.py),
            # never while aiosqlite's thread does: the pool's one checkout keeps them apart.
            connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            pool_size=1,
            max_overflow=0,
            module=OneTripDBAPI(),
            json_serializer=json_text.dumps,
            # Every use ends its transaction (sessions and connections are context managers),
            # so the pool's extra ROLLBACK at check-in would only be one more trip per use.
            pool_reset_on_return=None,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the delivery worker read while a command is written; foreign keys are off
            # by default in SQLite.
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cursor.close()

        return engine
    engine = create_async_engine(
        url, pool_size=pool_size, max_overflow=max_overflow, json_serializer=json_text.dumps
    )
    _ping_when_idle(engine.sync_engine, ping_after_idle)
    _PING_AFTER_IDLE_OF[engine.sync_engine] = ping_after_idle
    return engine


def ping_after_idle(engine: AsyncEngine) -> float:
    """How long a connection of this engine may sit idle before it is pinged on checkout."""
    return _PING_AFTER_IDLE_OF.get(engine.sync_engine, PING_AFTER_IDLE)


def _ping_when_idle(engine: Engine, after: float) -> None:
    """Liveness check of pooled connections, only for those that sat idle.

    Why not pool_pre_ping: it pings on every checkout, one extra round trip per transaction
    (docs/performance.md#postgresql-connections). A connection
    checked in moments ago is as alive as a ping would show; one idle for `after` seconds may
    have been dropped (a database restart, a proxy's idle timeout), so it is pinged, and a dead
    one is replaced, as pre-ping would (SQLAlchemy's pessimistic-disconnect recipe)."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("checked_in_at")
        if since is None or time.monotonic() - since < after:
            return  # new, or in steady use
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError("pooled connection failed its ping") from exc
        if not alive:
            raise DisconnectionError("pooled connection failed its ping")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


# What opens sessions on the engine (make_sessionmaker's), as the store's query functions take it.
SessionFactory: TypeAlias = async_sessionmaker[AsyncSession]


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


# The key of the PostgreSQL advisory lock the migrations run under: any constant the gateway
# owns; the same on every node, so nodes started together take turns (docs/decisions.md).
MIGRATION_LOCK_KEY = 0x63676D6967  # "cgmig"


def upgrade(url: str) -> None:
    """Bring the schema to the newest revision (blocking; run it before serving).

    Nodes started together take turns: PostgreSQL holds `MIGRATION_LOCK_KEY` on the migration
    connection (migrations/env.py, `migration_lock`), an SQLite file a lock on a file beside
    it. The first one migrates; the others then find the schema at head and change nothing."""
    # Alembic's `context` is one per process: two upgrades in threads of one process (tests
    # start several gateways in one) would share it.
    with _IN_PROCESS:
        database = sqlite_file(url)
        if database is None:
            command.upgrade(alembic_config(url), "head")
            return
        with _file_lock(database.with_name(database.name + ".migrate-lock")):
            command.upgrade(alembic_config(url), "head")


_IN_PROCESS = threading.Lock()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive flock on `path` (created 0600), released when the block ends or the
    process dies. Not on the database file itself: closing any descriptor of it would drop
    the POSIX locks SQLite holds through other connections of this process."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        fd = None  # no such directory, say: SQLite's own error says it better
    if fd is None:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.asynccontextmanager
async def migration_lock(connection: AsyncConnection) -> AsyncIterator[None]:
    """On PostgreSQL, the session-level advisory lock `MIGRATION_LOCK_KEY` held on
    `connection` for the block: another node's migrations wait until this one's are done
    (concurrent CREATE TYPE/TABLE would fail with a duplicate key in the catalog). Taken and
    released in transactions of their own, so alembic starts its own transaction after."""
    if connection.dialect.name != "postgresql":
        yield
        return
    started = time.monotonic()
    await connection.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")
    await connection.commit()
    waited = time.monotonic() - started
    if waited > 1:
        log.info("waited %.1f s for another node's migrations", waited)
    try:
        yield
    finally:
        # A failed migration leaves the connection's transaction aborted: end it first.
        await connection.rollback()
        await connection.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")
        await connection.commit()


async def upgrade_async(url: str) -> None:
    # env.py drives its own event loop with asyncio.run, so it runs in a worker thread.
    await asyncio.to_thread(upgrade, url)
