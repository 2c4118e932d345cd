"""A minimal CSMS over real sockets for the station simulator tests, whatever the OCPP version.

Each test module gives the server side of one connection (a versioned `ocpp` ChargePoint that
also derives from `CsmsRecorder`); the rest here is the same for OCPP 1.6J and 2.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from chargegate.sim import cli as sim_cli
from chargegate.sim.base import SimulatedStationBase

# Long enough to never fire during a test unless a test asks for heartbeats.
QUIET_HEARTBEAT = 60.0


class CsmsRecorder:
    """Everything the station sent on one connection, in order, and waits on its arrival."""

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


class CsmsSession(Protocol):
    """What FakeCsms needs of the server side of a connection."""

    id: str
    closed: asyncio.Event

    async def start(self) -> None: ...


SessionT = TypeVar("SessionT", bound=CsmsSession)
StationT = TypeVar("StationT", bound=SimulatedStationBase)


@dataclass
class FakeCsms(Generic[SessionT]):
    # Builds the server side of a connection from the station id and the socket.
    new_session: Callable[[str, ServerConnection], SessionT]
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
async def serving(
    fake: FakeCsms[SessionT], subprotocol: Subprotocol
) -> AsyncIterator[FakeCsms[SessionT]]:
    """`fake` listening on a free loopback port, its `url` set, for as long as the block lasts."""
    async with serve(fake.handler, "127.0.0.1", 0, subprotocols=[subprotocol]) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        fake.url = f"ws://127.0.0.1:{port}/ocpp"
        yield fake


@asynccontextmanager
async def booting_stations(
    csms: FakeCsms[SessionT], station_class: type[StationT], default_id: str
) -> AsyncIterator[Callable[..., Awaitable[tuple[StationT, SessionT]]]]:
    """A factory that boots a station against `csms` and returns it with the CSMS side of its
    connection; every station it booted is closed when the block ends."""
    started: list[StationT] = []

    async def factory(station_id: str = default_id, **options: Any) -> tuple[StationT, SessionT]:
        options.setdefault("heartbeat_interval", QUIET_HEARTBEAT)
        options.setdefault("response_timeout", 1.0)
        station = station_class(station_id, csms.url, **options)
        started.append(station)
        await asyncio.wait_for(station.connect_and_boot(), 1.0)
        return station, await csms.session(station_id)

    try:
        yield factory
    finally:
        for station in started:
            await station.close()


def sim_parser() -> argparse.ArgumentParser:
    """The `chargegate` parser with only the `sim` subcommand."""
    parser = argparse.ArgumentParser(prog="chargegate")
    sim_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser


async def check_reconnects(
    csms: FakeCsms[Any], station: SimulatedStationBase, clear_cache: Any, **last_status: Any
) -> None:
    """Run `station`, scripted to disconnect on its first ClearCache (`clear_cache`, the
    version's request), and check that it boots again on a new connection and answers there.

    `last_status` matches the last StatusNotification of a boot."""
    running = asyncio.create_task(station.run(reconnect_delay=0.01))
    try:
        first = await csms.session(station.id)
        await first.wait_for("StatusNotification", **last_status)
        pending = asyncio.create_task(first.call(clear_cache))
        await asyncio.wait_for(first.closed.wait(), 1.0)
        pending.cancel()

        second = await csms.session(station.id, nth=1)
        await second.wait_for("BootNotification")
        await second.wait_for("StatusNotification", **last_status)
        result = await second.call(clear_cache, suppress=False)
        assert result.status == "Accepted"
    finally:
        await station.close()
        await asyncio.wait_for(running, 1.0)
    assert not station.connected
