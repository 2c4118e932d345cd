"""Engine and session factory for SQLite (embedded default) and PostgreSQL, and migrations."""

from __future__ import annotations

import asyncio
import time
import weakref
from pathlib import Path
from typing import Any, TypeAlias

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from chargegate import json_text

from .sqlite_driver import OneTripDBAPI

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


# How long SQLite waits for another process's write lock.
BUSY_TIMEOUT_MS = 30_000

# A pooled PostgreSQL connection idle longer than this is pinged before it is handed out.
PING_AFTER_IDLE = 10.0
_PING_AFTER_IDLE_OF: weakref.WeakKeyDictionary[Engine, float] = weakref.WeakKeyDictionary()


def make_engine(
    url: str,
    ping_after_idle: float = PING_AFTER_IDLE,
    pool_size: int = 40,
    max_overflow: int = 0,
) -> AsyncEngine:
    """`pool_size` and `max_overflow` apply to PostgreSQL; SQLite has one connection."""
    if url.startswith("sqlite"):
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


def upgrade(url: str) -> None:
    """Bring the schema to the newest revision (blocking; run it before serving)."""
    command.upgrade(alembic_config(url), "head")


async def upgrade_async(url: str) -> None:
    # env.py drives its own event loop with asyncio.run, so it runs in a worker thread.
    await asyncio.to_thread(upgrade, url)
