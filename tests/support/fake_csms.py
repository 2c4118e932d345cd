"""A minimal CSMS over real sockets for the station simulator tests, whatever the OCPP version.

Each test module gives the server side of one connection (a versioned `ocpp` ChargePoint that
also derives from `RecordingCsms`) and a `csms` fixture serving a FakeCsms; it imports the
`connect` fixture (`connect_fixture`) from here. The rest here is the same for OCPP 1.6J and 2.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import pytest
from ocpp.routing import on
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from chargegate.sim import cli as sim_cli
from chargegate.sim.base import SimulatedStationBase

# Long enough to never fire during a test unless a test asks for heartbeats.
QUIET_HEARTBEAT = 60.0


def now() -> str:
    return datetime.now(UTC).isoformat()


class RecordingCsms:
    """Everything the station sent on one connection, in order, and waits on its arrival.

    Answers as any CSMS would, in the version of `RESULTS`: a BootNotification is accepted,
    Heartbeat gets the time, and messages whose answer carries nothing get it empty."""

    # The `ocpp.vXX.call_result` module of the connection's OCPP version.
    RESULTS: ClassVar[ModuleType]

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.closed = asyncio.Event()
        self._arrival = asyncio.Event()
        self._returned: set[int] = set()

    def _got(self, action: str, payload: dict[str, Any]) -> None:
        self.messages.append((action, payload))
        arrival, self._arrival = self._arrival, asyncio.Event()
        arrival.set()

    def mark(self) -> int:
        return len(self.messages)

    def of(self, action: str, since: int = 0) -> list[dict[str, Any]]:
        return [payload for name, payload in self.messages[since:] if name == action]

    def index_of(self, action: str, since: int = 0, **match: Any) -> int:
        for index in range(since, len(self.messages)):
            name, payload = self.messages[index]
            if name == action and all(payload.get(k) == v for k, v in match.items()):
                return index
        raise LookupError(f"no {action} {match} in {self.messages}")

    async def wait_for(
        self, action: str, since: int = 0, timeout: float = 1.0, **match: Any
    ) -> dict[str, Any]:
        """The first message of `action` at or after `since` matching `match`, not returned
        before."""
        async with asyncio.timeout(timeout):
            while True:
                arrival = self._arrival
                for index in range(since, len(self.messages)):
                    name, payload = self.messages[index]
                    if index in self._returned or name != action:
                        continue
                    if all(payload.get(k) == v for k, v in match.items()):
                        self._returned.add(index)
                        return payload
                await arrival.wait()

    @on("BootNotification")
    def on_boot_notification(self, **payload: Any) -> Any:
        self._got("BootNotification", payload)
        return self.RESULTS.BootNotification(current_time=now(), interval=300, status="Accepted")

    @on("StatusNotification")
    def on_status_notification(self, **payload: Any) -> Any:
        self._got("StatusNotification", payload)
        return self.RESULTS.StatusNotification()

    @on("Heartbeat")
    def on_heartbeat(self, **payload: Any) -> Any:
        self._got("Heartbeat", payload)
        return self.RESULTS.Heartbeat(current_time=now())

    # Messages answered with an empty result; one only an OCPP version has never arrives on
    # the other's connection.

    @on("MeterValues")
    def on_meter_values(self, **payload: Any) -> Any:
        self._got("MeterValues", payload)
        return self.RESULTS.MeterValues()

    @on("StopTransaction")
    def on_stop_transaction(self, **payload: Any) -> Any:
        self._got("StopTransaction", payload)
        return self.RESULTS.StopTransaction()

    @on("NotifyReport")
    def on_notify_report(self, **payload: Any) -> Any:
        self._got("NotifyReport", payload)
        return self.RESULTS.NotifyReport()

    @on("ReservationStatusUpdate")
    def on_reservation_status_update(self, **payload: Any) -> Any:
        self._got("ReservationStatusUpdate", payload)
        return self.RESULTS.ReservationStatusUpdate()


class CsmsSession(Protocol):
    """What FakeCsms and the scenarios below need of the server side of a connection."""

    id: str
    closed: asyncio.Event

    async def start(self) -> None: ...

    async def call(self, payload: Any, suppress: bool = True) -> Any: ...


SessionT = TypeVar("SessionT", bound=CsmsSession)


@dataclass
class FakeCsms(Generic[SessionT]):
    # Builds the server side of a connection from the station id and the socket.
    new_session: Callable[[str, ServerConnection], SessionT]
    # The simulator class the `connect` fixture boots, and the id it gives by default.
    station_class: type[SimulatedStationBase]
    default_station_id: str
    url: str = ""
    # The newest connection per station id, and all of them in order of arrival.
    sessions: dict[str, SessionT] = field(default_factory=dict)
    history: list[SessionT] = field(default_factory=list)
    subprotocols: dict[str, str | None] = field(default_factory=dict)
    _arrival: asyncio.Event = field(default_factory=asyncio.Event)

    async def handler(self, ws: ServerConnection) -> None:
        station_id = ws.request.path.rsplit("/", 1)[-1] if ws.request else "?"
        session = self.new_session(station_id, ws)
        self.sessions[station_id] = session
        self.history.append(session)
        self.subprotocols[station_id] = ws.subprotocol
        arrival, self._arrival = self._arrival, asyncio.Event()
        arrival.set()
        try:
            await session.start()
        except ConnectionClosed:
            pass
        finally:
            session.closed.set()

    async def session(self, station_id: str, nth: int = 0, timeout: float = 1.0) -> SessionT:
        """The `nth` connection (0: first) of `station_id`, waiting for it to arrive."""
        async with asyncio.timeout(timeout):
            while True:
                arrival = self._arrival
                mine = [session for session in self.history if session.id == station_id]
                if len(mine) > nth:
                    return mine[nth]
                await arrival.wait()


@asynccontextmanager
async def serving(fake: FakeCsms[SessionT]) -> AsyncIterator[FakeCsms[SessionT]]:
    """`fake` listening on a free loopback port, its `url` set, for as long as the block lasts;
    it speaks only the subprotocol of its station class."""
    subprotocols = [fake.station_class.SUBPROTOCOL]
    async with serve(fake.handler, "127.0.0.1", 0, subprotocols=subprotocols) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        fake.url = f"ws://127.0.0.1:{port}/ocpp"
        yield fake


BOUND = 10.0


@pytest.fixture(name="connect")
async def connect_fixture(
    csms: FakeCsms[Any],
) -> AsyncIterator[Callable[..., Awaitable[tuple[Any, Any]]]]:
    """Boot a station against the test module's `csms` fixture; returns it and the CSMS side
    of its connection. Every station it booted is closed at the end of the test."""
    started: list[SimulatedStationBase] = []

    async def factory(station_id: str = csms.default_station_id, **options: Any) -> tuple[Any, Any]:
        options.setdefault("heartbeat_interval", QUIET_HEARTBEAT)
        # Bounds, not waits: generous, as a loaded CI machine may take seconds to answer.
        options.setdefault("response_timeout", BOUND)
        station = csms.station_class(station_id, csms.url, **options)
        started.append(station)
        await asyncio.wait_for(station.connect_and_boot(), BOUND)
        return station, await csms.session(station_id)

    yield factory
    for station in started:
        await station.close()


def sim_parser() -> argparse.ArgumentParser:
    """The `chargegate` parser with only the `sim` subcommand."""
    parser = argparse.ArgumentParser(prog="chargegate")
    sim_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser
