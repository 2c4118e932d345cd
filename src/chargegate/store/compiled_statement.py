"""A Core statement compiled once for one dialect, to be run by the driver directly (sqlite3,
asyncpg), converting values the way SQLAlchemy does.

Why: on the hot path SQLAlchemy's per-execution work (execution context, result set-up,
events, parameter processing per call) cost several times what the database spends on the
statement. Here the statement's text, parameter order and type conversions come from
SQLAlchemy once (its compiler, with the dialect's bind casts, and each column type's own bind
and result processors, so what is written and read back is byte-for-byte what the ORM writes
and reads), and each execution is one driver call (store/units.py's executors).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Float, Numeric
from sqlalchemy.dialects.sqlite import DATETIME as SQLITE_DATETIME
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

Processor = Callable[[Any], Any] | None

# SQLAlchemy's SQLite DATETIME writes this, through a dict of seven named fields per value.
_SQLITE_DATETIME_FORMAT = (
    "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"
)


def _bind_processor(type_: Any, dialect: Dialect) -> Processor:
    """The type's own bind processor, except SQLite's default DATETIME one, replaced by the same
    text written with one tuple format (docs/performance.md#compiled-statements). Anything but a
    datetime still goes to SQLAlchemy's, for its own handling and errors."""
    impl = type_.dialect_impl(dialect)
    process: Processor = impl.bind_processor(dialect)
    if not (
        process is not None
        and isinstance(impl, SQLITE_DATETIME)
        and impl._storage_format == _SQLITE_DATETIME_FORMAT
    ):
        return process
    general = process

    def sqlite_datetime(value: Any) -> Any:
        if type(value) is datetime:
            # %-formatting a tuple: faster here than the f-string ruff would prefer.
            return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031
                value.year,
                value.month,
                value.day,
                value.hour,
                value.minute,
                value.second,
                value.microsecond,
            )
        return general(value)

    return sqlite_datetime


def _result_processor(type_: Any, dialect: Dialect) -> Processor:
    """The type's own result processor. asyncpg's numeric ones ask for the column's PostgreSQL
    type, which a statement compiled ahead of its results does not know; none is needed there:
    asyncpg decodes float8 to float and numeric to Decimal itself."""
    impl = type_.dialect_impl(dialect)
    try:
        process: Processor = impl.result_processor(dialect, None)
    except TypeError:
        if dialect.driver != "asyncpg" or not isinstance(impl, Numeric | Float):
            raise
        return None
    return process


class CompiledStatement:
    def __init__(
        self, statement: Executable, dialect: Dialect, keys: Iterable[str] | None = None
    ) -> None:
        """`keys`: for an INSERT, the columns the caller always passes (all of them are bound;
        SQLAlchemy would otherwise fill column defaults we do not run here)."""
        key_list = sorted(keys) if keys is not None else None
        assert isinstance(statement, ClauseElement)
        compiled = statement.compile(dialect=dialect, column_keys=key_list)
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        names = list(compiled.positiontup or ())
        if key_list is not None and not set(names) <= set(key_list):
            missing = sorted(set(names) - set(key_list))
            raise ValueError(f"insert needs values for {missing} (column defaults are not run)")
        # (name, given by the caller?, else the statement's own value (LIMIT 1, SET x=NULL))
        self._binds: list[tuple[str, bool, Any, Processor]] = []
        for name in names:
            bind = compiled.binds[name]
            process = _bind_processor(bind.type, dialect)
            self._binds.append((name, bind.required, bind.effective_value, process))
        columns = list(getattr(statement, "exported_columns", ()))
        self._results: list[Processor] = [
            _result_processor(column.type, dialect) for column in columns
        ]
        self._row = namedtuple("Row", [column.key for column in columns])  # type: ignore[misc]

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        out = []
        for name, given, fixed, process in self._binds:
            value = values[name] if given else fixed
            out.append(process(value) if process is not None else value)
        return tuple(out)

    def row(self, raw: Iterable[Any]) -> Any:
        """A row with the columns as attributes, like a Core Row."""
        return self._row(
            *(
                process(value) if process is not None else value
                for value, process in zip(raw, self._results, strict=True)
            )
        )
