"""Units of work: a plain function over an `Executor`, run as one transaction.

A unit is written once and runs on either engine. On SQLite the whole unit runs on the
connection's own thread in one trip (statements, Python between them, commit), with sqlite3
directly; elsewhere it runs through SQLAlchemy (`run_sync` on an async connection). A unit
must not await and must not touch anything but its executor and its arguments: on SQLite it
runs outside the event loop.

SQLite has one connection (store/db.py): never run a unit while the same task holds a session
or connection, or it waits for itself.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.sql.base import Executable

from .sqlite_statements import SqliteStatement

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


class SqliteExecutor:
    def __init__(
        self,
        cursor: sqlite3.Cursor,
        compiled: dict[tuple[int, Any], SqliteStatement],
        dialect: Dialect,
    ) -> None:
        self._cursor = cursor
        self._compiled = compiled
        self._dialect = dialect

    def _statement(self, statement: Executable, keys: Iterable[str] | None) -> SqliteStatement:
        # Statements are module constants; an INSERT is compiled per set of columns given.
        is_insert = getattr(statement, "is_insert", False)
        key = (id(statement), frozenset(keys) if is_insert and keys is not None else None)
        found = self._compiled.get(key)
        if found is None:
            found = SqliteStatement(statement, self._dialect, keys if is_insert else None)
            self._compiled[key] = found
        return found

    def rows(self, statement: Executable, values: Mapping[str, Any]) -> list[Any]:
        return self._statement(statement, values.keys()).execute(self._cursor, values)

    def many(self, statement: Executable, rows: Iterable[Mapping[str, Any]]) -> None:
        batch = list(rows)
        if batch:
            self._statement(statement, batch[0].keys()).execute_many(self._cursor, batch)


class Units:
    """Runs units of work against one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        # Compiled statements must not outlive their statement objects: they are keyed by id().
        self._compiled: dict[tuple[int, Any], SqliteStatement] = {}

    async def run(self, unit: Unit[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if not self._sqlite:
            async with self._engine.begin() as conn:
                return await conn.run_sync(lambda c: unit(CoreExecutor(c), *args, **kwargs))
        proxied = await self._engine.raw_connection()
        try:
            # The pool's checkout gives this task the one connection; aiosqlite runs the unit
            # on that connection's thread (the same private hooks SQLAlchemy's adapter uses).
            driver: Any = proxied.driver_connection
            return await driver._execute(self._in_thread, driver._conn, unit, args, kwargs)
        finally:
            proxied.close()

    def _in_thread(
        self,
        conn: sqlite3.Connection,
        unit: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> T:
        cursor = conn.cursor()
        try:
            result = unit(
                SqliteExecutor(cursor, self._compiled, self._engine.dialect), *args, **kwargs
            )
            conn.commit()
            return result
        except BaseException:
            conn.rollback()
            raise
        finally:
            cursor.close()


async def run_in_session(
    session: AsyncSession, unit: Unit[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """A unit inside a session's transaction (its commit is the session's)."""
    return await session.run_sync(lambda s: unit(CoreExecutor(s.connection()), *args, **kwargs))
