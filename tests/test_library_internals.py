"""The private internals of libraries that chargegate relies on, one test each, so that an
upgrade that removes or changes one fails here with the library, the internal and the module
that uses it named, rather than somewhere deep in a command's path. pyproject.toml bounds each
of these libraries below its next release that may change them; docs/dependencies.md says what
to do when one of these tests fails after raising a bound."""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
from collections.abc import Callable
from importlib.metadata import version
from types import ModuleType
from typing import Any

import aiosqlite
import ocpp.messages
import ocpp.v16
import ocpp.v16.call_result
import ocpp.v201
import ocpp.v201.call_result
import pytest
import sqlalchemy.dialects.sqlite.aiosqlite as sqlalchemy_aiosqlite
import sqlalchemy.util
from ocpp.charge_point import ChargePoint
from ocpp.messages import Call, MessageType
from sqlalchemy import text
from sqlalchemy.dialects.sqlite import DATETIME as SQLITE_DATETIME
from sqlalchemy.ext.asyncio import create_async_engine

from chargegate.ocpp import validation
from chargegate.store import compiled_statement
from chargegate.store.sqlite_driver import OneTripConnection, OneTripCursor, OneTripDBAPI


def _require(ok: bool, library: str, internal: str, used_by: str, detail: str) -> None:
    if not ok:
        pytest.fail(
            f"{library} {version(library)} no longer has {internal}, used by {used_by}: "
            f"{detail} (see docs/dependencies.md)",
            pytrace=False,
        )


def _parameters(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


def _names_used(function: Callable[..., Any]) -> set[str]:
    """Globals and attributes the function's own code looks up by name."""
    return set(function.__code__.co_names)


def _slots(cls: type) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        names.update((slots,) if isinstance(slots, str) else slots)
    return names


# aiosqlite: store/sqlite_driver.py and store/units.py run whole statements and batches on the
# connection's thread.

SQLITE_USERS = "store/sqlite_driver.py and store/units.py"


async def test_aiosqlite_connection_execute_and_conn() -> None:
    execute = getattr(aiosqlite.Connection, "_execute", None)
    _require(
        execute is not None and inspect.iscoroutinefunction(execute),
        "aiosqlite",
        "Connection._execute",
        SQLITE_USERS,
        "an async method that runs a function on the connection's thread",
    )
    assert execute is not None
    _require(
        _parameters(execute) == ["self", "fn", "args", "kwargs"],
        "aiosqlite",
        "Connection._execute(fn, *args, **kwargs)",
        SQLITE_USERS,
        f"its parameters are now {_parameters(execute)}",
    )
    _require(
        isinstance(inspect.getattr_static(aiosqlite.Connection, "_conn", None), property),
        "aiosqlite",
        "Connection._conn",
        SQLITE_USERS,
        "the property that gives the sqlite3.Connection",
    )
    async with aiosqlite.connect(":memory:") as connection:
        conn = connection._conn
        _require(
            isinstance(conn, sqlite3.Connection),
            "aiosqlite",
            "Connection._conn",
            SQLITE_USERS,
            f"it gives {type(conn).__name__}, not sqlite3.Connection",
        )

        def one(c: sqlite3.Connection, value: int) -> int:
            row = c.execute("SELECT ?", (value,)).fetchone()
            return int(row[0])

        _require(
            await connection._execute(one, conn, 7) == 7,
            "aiosqlite",
            "Connection._execute",
            SQLITE_USERS,
            "it no longer returns what the function returned",
        )


# SQLAlchemy: store/sqlite_driver.py replaces the aiosqlite adapter's cursor with one that runs
# a statement in one trip; store/units.py runs units under greenlet_spawn with await_only.

DRIVER = "store/sqlite_driver.py"


def _adapter(name: str) -> Any:
    """The class `name` of SQLAlchemy's aiosqlite dialect, which sqlite_driver subclasses."""
    cls = getattr(sqlalchemy_aiosqlite, name, None)
    _require(
        isinstance(cls, type),
        "sqlalchemy",
        f"dialects.sqlite.aiosqlite.{name}",
        DRIVER,
        "the class it subclasses",
    )
    return cls


def test_sqlalchemy_aiosqlite_cursor_internals() -> None:
    base = _adapter("AsyncAdapt_aiosqlite_cursor")
    for name in ("_adapt_connection", "_connection", "_cursor", "_rows", "_soft_closed_memoized"):
        _require(
            name in _slots(base),
            "sqlalchemy",
            f"AsyncAdapt_aiosqlite_cursor.{name}",
            DRIVER,
            "OneTripCursor.__init__ sets every attribute the base class's methods read",
        )
    hooks = {
        "_execute_async": ("execute", ["self", "operation", "parameters"]),
        "_executemany_async": ("executemany", ["self", "operation", "seq_of_parameters"]),
    }
    for hook, (caller, parameters) in hooks.items():
        method = getattr(base, hook, None)
        _require(
            method is not None and inspect.iscoroutinefunction(method),
            "sqlalchemy",
            f"AsyncAdapt_aiosqlite_cursor.{hook}",
            DRIVER,
            "the coroutine OneTripCursor overrides to run a statement in one trip",
        )
        assert method is not None
        _require(
            _parameters(method) == parameters,
            "sqlalchemy",
            f"AsyncAdapt_aiosqlite_cursor.{hook}{tuple(parameters[1:])}",
            DRIVER,
            f"its parameters are now {_parameters(method)}",
        )
        _require(
            hook in _names_used(getattr(base, caller)),
            "sqlalchemy",
            f"AsyncAdapt_aiosqlite_cursor.{caller} calling {hook}",
            DRIVER,
            f"{caller}() no longer goes through {hook}, so OneTripCursor would be bypassed",
        )
    _require(
        inspect.iscoroutinefunction(getattr(base, "_async_soft_close", None)),
        "sqlalchemy",
        "AsyncAdapt_aiosqlite_cursor._async_soft_close",
        DRIVER,
        "the coroutine OneTripCursor overrides (it has nothing open to close)",
    )
    _require(
        "_cursor" in _names_used(base.close),
        "sqlalchemy",
        "AsyncAdapt_aiosqlite_cursor.close checking _cursor",
        DRIVER,
        "close() must skip a cursor whose _cursor is None",
    )


def test_sqlalchemy_aiosqlite_connection_internals() -> None:
    base = _adapter("AsyncAdapt_aiosqlite_connection")
    _require(
        "_cursor_cls" in _names_used(base.cursor),
        "sqlalchemy",
        "AsyncAdapt_aiosqlite_connection._cursor_cls",
        DRIVER,
        "cursor() no longer makes its cursor from _cursor_cls, so OneTripCursor is not used",
    )
    for name in ("_connection", "_execute_mutex"):
        _require(
            name in _slots(base),
            "sqlalchemy",
            f"AsyncAdapt_aiosqlite_connection.{name}",
            DRIVER,
            "OneTripCursor reads it from its connection",
        )
    dbapi = _adapter("AsyncAdapt_aiosqlite_dbapi")
    _require(
        _parameters(dbapi.__init__)[1:3] == ["aiosqlite", "sqlite"],
        "sqlalchemy",
        "AsyncAdapt_aiosqlite_dbapi(aiosqlite, sqlite)",
        DRIVER,
        f"its parameters are now {_parameters(dbapi.__init__)}",
    )


async def test_sqlalchemy_runs_statements_through_the_one_trip_cursor() -> None:
    engine = create_async_engine("sqlite+aiosqlite://", module=OneTripDBAPI())
    try:
        async with engine.begin() as connection:
            raw = await connection.get_raw_connection()
            adapted = raw.dbapi_connection
            _require(
                isinstance(adapted, OneTripConnection)
                and isinstance(adapted.cursor(), OneTripCursor),
                "sqlalchemy",
                "AsyncAdapt_aiosqlite_dbapi.connect",
                DRIVER,
                f"the engine's connection is a {type(adapted).__name__}",
            )
            await connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
            inserted = await connection.execute(text("INSERT INTO t (v) VALUES ('a'), ('b')"))
            rows = (await connection.execute(text("SELECT v FROM t ORDER BY id"))).all()
        _require(
            inserted.rowcount == 2 and [row.v for row in rows] == ["a", "b"],
            "sqlalchemy",
            "the aiosqlite adapter's cursor protocol",
            DRIVER,
            f"rowcount {inserted.rowcount}, rows {rows}",
        )
    finally:
        await engine.dispose()


async def test_sqlalchemy_await_only_and_greenlet_spawn() -> None:
    await_only = getattr(sqlalchemy.util, "await_only", None)
    greenlet_spawn = getattr(sqlalchemy.util, "greenlet_spawn", None)
    _require(
        await_only is not None and greenlet_spawn is not None,
        "sqlalchemy",
        "util.await_only and util.greenlet_spawn",
        "store/units.py",
        "the bridge that lets a unit (plain code) await asyncpg",
    )
    assert await_only is not None and greenlet_spawn is not None
    answer = await greenlet_spawn(lambda: await_only(asyncio.sleep(0, result=5)))
    _require(
        answer == 5,
        "sqlalchemy",
        "util.await_only inside util.greenlet_spawn",
        "store/units.py",
        f"awaiting sleep(0, result=5) gave {answer!r}",
    )
    _require(
        hasattr(sqlalchemy.util, "EMPTY_DICT"),
        "sqlalchemy",
        "util.EMPTY_DICT",
        DRIVER,
        "OneTripCursor sets _soft_closed_memoized to it, as the base class does",
    )


def test_sqlalchemy_sqlite_datetime_storage_format() -> None:
    _require(
        "_storage_format" in _slots(SQLITE_DATETIME)
        or hasattr(SQLITE_DATETIME(), "_storage_format"),
        "sqlalchemy",
        "sqlite.DATETIME._storage_format",
        "store/compiled_statement.py",
        "the format it checks before writing datetimes its faster way",
    )
    # A changed default only turns the faster way off; said here so that it is noticed.
    _require(
        SQLITE_DATETIME()._storage_format == compiled_statement._SQLITE_DATETIME_FORMAT,
        "sqlalchemy",
        "sqlite.DATETIME's default storage format",
        "store/compiled_statement.py",
        "the default changed, so datetimes are written SQLAlchemy's slower way",
    )


# ocpp: ocpp/validation.py puts a compiled validator in front of the library's, and
# ocpp/link.py (and sim/) make calls beside the library's ChargePoint.call.

VALIDATION = "ocpp/validation.py"
LINK = "ocpp/link.py and sim/"


def test_ocpp_validate_payload_is_looked_up_at_call_time() -> None:
    library_validate = validation._library_validate_payload
    _require(
        library_validate.__module__ == "ocpp.messages"
        and library_validate.__name__ == "_validate_payload"
        and _parameters(library_validate) == ["message", "ocpp_version"],
        "ocpp",
        "messages._validate_payload(message, ocpp_version)",
        VALIDATION,
        "the function replaced by validation.install()",
    )
    _require(
        "_validate_payload" in _names_used(ocpp.messages.validate_payload),
        "ocpp",
        "messages.validate_payload calling _validate_payload",
        VALIDATION,
        "validate_payload no longer looks _validate_payload up in its module",
    )
    _require(
        "get_validator" in _names_used(library_validate),
        "ocpp",
        "messages._validate_payload calling get_validator",
        VALIDATION,
        "_validate_payload no longer looks get_validator up in its module",
    )
    library_get = validation._library_get_validator
    _require(
        _parameters(library_get) == ["message_type_id", "action", "ocpp_version", "parse_float"],
        "ocpp",
        "messages.get_validator(message_type_id, action, ocpp_version, parse_float)",
        VALIDATION,
        f"its parameters are now {_parameters(library_get)}",
    )
    validator = library_get(MessageType.Call, "Heartbeat", "1.6")
    _require(
        isinstance(getattr(validator, "schema", None), dict) and callable(validator.validate),
        "ocpp",
        "a validator with .schema and .validate()",
        VALIDATION,
        f"get_validator gave {type(validator).__name__}",
    )
    library_validate(Call(unique_id="1", action="Heartbeat", payload={}), "1.6")


def test_ocpp_charge_point_internals() -> None:
    _require(
        {"response_timeout", "logger"} <= set(_parameters(ChargePoint.__init__)),
        "ocpp",
        "ChargePoint(id, connection, response_timeout=, logger=)",
        LINK,
        f"its parameters are now {_parameters(ChargePoint.__init__)}",
    )
    _require(
        {"_response_queue", "put_nowait"} <= _names_used(ChargePoint.route_message),
        "ocpp",
        "ChargePoint.route_message handing answers to _response_queue.put_nowait",
        LINK,
        "link.Replies takes the queue's place and is given every CALLRESULT and CALLERROR",
    )
    send = getattr(ChargePoint, "_send", None)
    _require(
        send is not None
        and inspect.iscoroutinefunction(send)
        and _parameters(send) == ["self", "message"]
        and "_connection" in _names_used(send),
        "ocpp",
        "ChargePoint._send(message) writing to _connection",
        LINK,
        "the coroutine that sends one frame",
    )


def test_ocpp_handle_call_answers_a_parsed_call() -> None:
    """ocpp/link.py's route_message reads frames itself (ocpp/frames.py) and hands each CALL
    to the library's `_handle_call`, which validates it, runs the handler, sends a handler's
    OCPPError as its CALLERROR and raises the validation's."""
    handle = getattr(ChargePoint, "_handle_call", None)
    _require(
        handle is not None
        and inspect.iscoroutinefunction(handle)
        and _parameters(handle) == ["self", "msg"]
        and {"route_map", "validate_payload", "create_call_error", "_send"} <= _names_used(handle),
        "ocpp",
        "ChargePoint._handle_call(msg) validating, calling the handler and answering",
        "ocpp/link.py (route_message)",
        "the coroutine that answers one parsed Call",
    )
    _require(
        "route_map" in ChargePoint.__init__.__code__.co_names,
        "ocpp",
        "ChargePoint.route_map (action -> handlers)",
        "ocpp/link.py (an action without a handler is NotSupported or NotImplemented)",
        "set in ChargePoint.__init__",
    )


@pytest.mark.parametrize(
    ("cls", "call_result", "ocpp_version"),
    [
        (ocpp.v16.ChargePoint, ocpp.v16.call_result, "1.6"),
        (ocpp.v201.ChargePoint, ocpp.v201.call_result, "2.0.1"),
    ],
)
def test_ocpp_version_charge_point_internals(
    cls: type[ChargePoint], call_result: ModuleType, ocpp_version: str
) -> None:
    station = cls("CP1", None)
    _require(
        isinstance(getattr(station, "_call_lock", None), asyncio.Lock),
        "ocpp",
        f"{cls.__module__}.ChargePoint._call_lock",
        LINK,
        "the lock that keeps one call at a time per station",
    )
    _require(
        hasattr(station, "_response_queue") and hasattr(station, "_connection"),
        "ocpp",
        f"{cls.__module__}.ChargePoint._response_queue and _connection",
        LINK,
        "the attributes set in ChargePoint.__init__",
    )
    _require(
        getattr(cls, "_call_result", None) is call_result,
        "ocpp",
        f"{cls.__module__}.ChargePoint._call_result",
        LINK,
        "the module whose dataclasses a reply's payload becomes",
    )
    _require(
        getattr(cls, "_ocpp_version", None) == ocpp_version,
        "ocpp",
        f"{cls.__module__}.ChargePoint._ocpp_version",
        LINK,
        f"expected {ocpp_version!r}, got {getattr(cls, '_ocpp_version', None)!r}",
    )


# uvicorn: limits/connections.py subclasses its httptools protocol (header deadline, connection
# caps) and mixes a release of the connection's slot into its WebSocket protocol.

CONNECTIONS = "limits/connections.py"


def test_uvicorn_protocols_limits_connections_builds_on() -> None:
    from uvicorn.config import Config
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.protocols.websockets.auto import AutoWebSocketsProtocol

    for method in (
        "connection_made",
        "connection_lost",
        "data_received",
        "on_message_begin",
        "on_headers_complete",
        "handle_websocket_upgrade",
    ):
        _require(
            callable(getattr(HttpToolsProtocol, method, None)),
            "uvicorn",
            f"HttpToolsProtocol.{method}",
            CONNECTIONS,
            "a callback the limits hook into",
        )
    _require(
        _parameters(HttpToolsProtocol.__init__)[:4]
        == ["self", "config", "server_state", "app_state"],
        "uvicorn",
        "HttpToolsProtocol(config, server_state, app_state)",
        CONNECTIONS,
        f"its parameters are now {_parameters(HttpToolsProtocol.__init__)}",
    )
    # The upgrade hands the same transport to the WebSocket protocol, which releases it.
    _require(
        {"ws_protocol_class", "transport", "set_protocol", "connection_made"}
        <= _names_used(HttpToolsProtocol.handle_websocket_upgrade),
        "uvicorn",
        "HttpToolsProtocol.handle_websocket_upgrade",
        CONNECTIONS,
        "no longer passes the transport on to ws_protocol_class",
    )
    _require(
        AutoWebSocketsProtocol is not None
        and callable(getattr(AutoWebSocketsProtocol, "connection_lost", None)),
        "uvicorn",
        "protocols.websockets.auto.AutoWebSocketsProtocol.connection_lost",
        CONNECTIONS,
        "the WebSocket protocol whose close releases a station's slot",
    )

    # A class given as `http` / `ws` is used as it is.
    async def app(scope: Any, receive: Any, send: Any) -> None:
        pass

    config = Config(app, http=HttpToolsProtocol, ws=AutoWebSocketsProtocol)  # type: ignore[arg-type]
    config.load()
    _require(
        config.http_protocol_class is HttpToolsProtocol
        and config.ws_protocol_class is AutoWebSocketsProtocol,
        "uvicorn",
        "Config(http=<class>, ws=<class>)",
        CONNECTIONS,
        "a protocol class passed to Config is no longer the one it uses",
    )
