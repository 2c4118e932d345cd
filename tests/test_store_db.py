"""Pooled PostgreSQL connections: pinged only after sitting idle (store/db.py), and a connection
the server dropped meanwhile is replaced before anyone uses it."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, literal, select
from sqlalchemy.exc import DBAPIError

from chargegate.app import create_app
from chargegate.settings import Settings
from chargegate.store import db
from chargegate.store.units import Executor, Units, connection_survives, first

from .conftest import _plain_dsn

# What a unit run on a connection the server dropped raises: asyncpg's own error, which
# depends on when it notices the socket's end (InterfaceError "connection is closed",
# InternalClientError, or ConnectionDoesNotExistError "closed in the middle of operation",
# a PostgresError, seen on a slower machine), or SQLAlchemy's wrapping of one.
DROPPED = (
    DBAPIError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    OSError,
)


def _one(x: Executor) -> Any:
    return first(x, select(literal(1).label("one")), {})


async def _drop_every_session_but_ours(url: str) -> None:
    """What a database restart or a proxy's idle timeout does to pooled connections."""
    killer = await asyncpg.connect(_plain_dsn(url))
    try:
        await killer.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await killer.close()


@pytest.mark.parametrize("idle_for_a_ping", [0.0, 3600.0], ids=["pinged", "not-pinged"])
async def test_a_connection_dropped_while_idle_is_replaced_when_pinged(
    postgres_url: str, idle_for_a_ping: float
) -> None:
    engine = db.make_engine(postgres_url, ping_after_idle=idle_for_a_ping)
    units = Units(engine)
    try:
        assert (await units.run(_one)).one == 1  # a connection now waits in the pool
        await _drop_every_session_but_ours(postgres_url)
        if idle_for_a_ping == 0.0:
            assert (await units.run(_one)).one == 1
        else:
            # Without the ping the dead connection is handed out: one failure (asyncpg's own
            # error, which depends on when it notices: units run on asyncpg directly), after
            # which the connection is invalidated and the next use connects afresh.
            with pytest.raises(DROPPED):
                await units.run(_one)
            assert (await units.run(_one)).one == 1
    finally:
        await units.close()
        await engine.dispose()


async def test_the_postgresql_pool_is_sized_by_settings(postgres_url: str) -> None:
    settings = Settings(database_url=postgres_url, database_pool_size=7, database_max_overflow=3)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        assert app.state.gateway.engine.pool.size() == 7


async def test_units_kept_connections_are_dropped_with_the_first_one_found_dead(
    postgres_url: str,
) -> None:
    """Units keep the connections they used. When the server drops them all (a restart, a
    failover), the first unit to find its connection dead fails, and the others kept are not
    handed out to fail one unit each."""
    engine = db.make_engine(postgres_url, ping_after_idle=3600.0)
    units = Units(engine)

    def _slow(x: Executor) -> Any:
        return first(x, select(literal(1).label("one"), func.pg_sleep(0.1).label("slept")), {})

    try:
        await asyncio.gather(*(units.run(_slow) for _ in range(4)))  # four kept now
        await _drop_every_session_but_ours(postgres_url)
        failures = 0
        for _ in range(6):
            try:
                assert (await units.run(_one)).one == 1
            except DROPPED:
                failures += 1
        assert failures == 1
    finally:
        await units.close()
        await engine.dispose()


async def test_a_pool_too_small_to_share_is_not_kept_by_units(postgres_url: str) -> None:
    engine = db.make_engine(postgres_url, pool_size=2)
    units = Units(engine)
    try:
        assert (await units.run(_one)).one == 1
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        async with engine.connect() as conn:  # a session's connection is there at once
            assert (await conn.execute(select(literal(2)))).scalar() == 2
    finally:
        await units.close()
        await engine.dispose()


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.UniqueViolationError("duplicate key"),
        asyncpg.SerializationError("could not serialize access"),
        asyncpg.QueryCanceledError("canceling statement due to statement timeout"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_connection_whose_server_reported_an_error_serves_the_next_unit(
    error: Exception,
) -> None:
    assert connection_survives(error, closed=False)


@pytest.mark.parametrize(
    "error",
    [
        # The server's FATAL message can reach the unit before the socket's end does: the
        # connection is not closed yet, and would fail the next unit handed it.
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.CrashShutdownError("terminating connection because of crash of another"),
        asyncpg.CannotConnectNowError("the database system is shutting down"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        ConnectionResetError("connection reset by peer"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        asyncio.CancelledError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_connection_that_failed_otherwise_serves_no_other_unit(error: BaseException) -> None:
    assert not connection_survives(error, closed=False)
    if isinstance(error, asyncpg.PostgresError):
        assert not connection_survives(error, closed=True)
