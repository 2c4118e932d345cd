"""Simulated stations connected to a gateway for as long as a fixture lasts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from chargegate.sim.base import SimulatedStationBase

StationT = TypeVar("StationT", bound=SimulatedStationBase)


@asynccontextmanager
async def station_factory(
    url_base: str, station_class: type[StationT], default_id: str
) -> AsyncIterator[Callable[..., Awaitable[StationT]]]:
    """A factory that connects and boots a `station_class` (options as its constructor takes
    them) to `url_base`; every station it booted is closed when the block ends."""
    started: list[StationT] = []

    async def connect(station_id: str = default_id, **options: Any) -> StationT:
        station = station_class(station_id, url_base, **options)
        await station.connect_and_boot()
        started.append(station)
        return station

    try:
        yield connect
    finally:
        for station in started:
            await station.close()
