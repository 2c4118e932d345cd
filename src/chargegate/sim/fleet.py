"""Many simulated stations against one CSMS, started together and stopped together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from chargegate.sim.script import OCPP_VERSIONS, OcppVersion, Script
from chargegate.sim.station16 import SimulatedStation16
from chargegate.sim.station201 import SimulatedStation201

log = logging.getLogger(__name__)

# A fleet only uses what both versions share: id, run, ready, close, connected.
Station = SimulatedStation16 | SimulatedStation201


class Fleet:
    """Handles to running stations: look them up by id, wait for them, close them all."""

    def __init__(self, stations: list[Station], reconnect_delay: float | None = None) -> None:
        self.stations = stations
        self.reconnect_delay = reconnect_delay
        self._by_id = {station.id: station for station in stations}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self) -> None:
        for station in self.stations:
            if station.id not in self._tasks:
                self._tasks[station.id] = asyncio.create_task(
                    station.run(self.reconnect_delay), name=f"fleet:{station.id}"
                )

    # A timeout argument keeps the call site in bench scripts a one-liner.
    async def wait_ready(self, timeout: float) -> None:
        """Return once every station has booted; raise the first station's failure instead, or
        TimeoutError."""
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(self._ready(station) for station in self.stations))

    async def _ready(self, station: Station) -> None:
        run_task = self._tasks[station.id]
        ready = asyncio.create_task(station.ready.wait())
        try:
            await asyncio.wait({ready, run_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if station.ready.is_set():
            return
        run_task.result()  # raises what ended the station
        raise ConnectionError(f"{station.id} stopped before it booted")

    async def wait(self) -> None:
        """Until every station has stopped (with reconnects: until close())."""
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def close(self) -> None:
        await asyncio.gather(
            *(station.close() for station in self.stations), return_exceptions=True
        )
        for task in self._tasks.values():
            task.cancel()
        results = await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        for station_id, result in zip(self._tasks, results, strict=True):
            if isinstance(result, Exception):
                log.debug("%s ended with %r", station_id, result)

    def __getitem__(self, station_id: str) -> Station:
        return self._by_id[station_id]

    def __iter__(self) -> Iterator[Station]:
        return iter(self.stations)

    def __len__(self) -> int:
        return len(self.stations)

    async def __aenter__(self) -> Fleet:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def station_id(prefix: str, index: int) -> str:
    return f"{prefix}{index:05d}"


def make_station(
    ocpp: OcppVersion, station_id: str, url_base: str, connectors: int, **options: Any
) -> Station:
    """A station of the `ocpp` version; `connectors` means EVSEs (of one connector) in 2.0.1."""
    if ocpp == "2.0.1":
        return SimulatedStation201(station_id, url_base, evses=connectors, **options)
    if ocpp == "1.6":
        return SimulatedStation16(station_id, url_base, connectors=connectors, **options)
    raise ValueError(f"unknown OCPP version {ocpp!r}; expected one of: {', '.join(OCPP_VERSIONS)}")


async def run_fleet(
    url_base: str,
    stations: int,
    connectors: int = 2,
    script: Script | None = None,
    prefix: str = "SIM-",
    heartbeat_interval: float | None = None,
    *,
    ready_timeout: float | None = 30.0,
    reconnect_delay: float | None = None,
    ocpp: OcppVersion = "1.6",
    **station_options: Any,
) -> Fleet:
    """Start `stations` stations speaking `ocpp` and sharing one `script` (of that version);
    return the running Fleet. In OCPP 2.0.1, `connectors` is the number of EVSEs.

    With `ready_timeout`, return only once all have booted (closing the fleet and raising if
    one fails or time runs out); with None, return at once and let them connect meanwhile.
    Use as `async with await run_fleet(...) as fleet:` or call `fleet.close()`.
    """
    shared = script if script is not None else Script(version=ocpp)
    if shared.version != ocpp:
        raise ValueError(f"an OCPP {ocpp} fleet needs an OCPP {ocpp} script, not {shared!r}")
    fleet = Fleet(
        [
            make_station(
                ocpp,
                station_id(prefix, index),
                url_base,
                connectors,
                script=shared,
                heartbeat_interval=heartbeat_interval,
                **station_options,
            )
            for index in range(stations)
        ],
        reconnect_delay=reconnect_delay,
    )
    fleet.start()
    if ready_timeout is not None:
        try:
            await fleet.wait_ready(ready_timeout)
        except BaseException:
            await fleet.close()
            raise
        log.info("fleet of %d stations ready at %s", stations, url_base)
    return fleet
