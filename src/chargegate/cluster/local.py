"""In-process StationRouter: the default for a single node."""

from __future__ import annotations

import logging

from chargegate.domain.station_calls import Outcome, StationReply, StationRequest

from .router import StationLink

log = logging.getLogger(__name__)


class LocalStationRouter:
    def __init__(self) -> None:
        self._links: dict[str, StationLink] = {}

    async def is_connected(self, station_id: str) -> bool:
        return self.holds(station_id)

    def holds(self, station_id: str) -> bool:
        """Whether this process holds the station's socket."""
        return station_id in self._links

    def connected_count(self) -> int:
        return len(self._links)

    def station_ids(self) -> list[str]:
        return list(self._links)

    def link(self, station_id: str) -> StationLink | None:
        return self._links.get(station_id)

    async def attach(self, station_id: str, link: StationLink) -> None:
        """Register a new connection; a station that reconnects replaces its old socket."""
        old = self._links.get(station_id)
        self._links[station_id] = link
        if old is not None and old is not link:
            log.info("station %s reconnected; closing its previous connection", station_id)
            await old.disconnect("replaced by a new connection")

    def detach(self, station_id: str, link: StationLink) -> None:
        if self._links.get(station_id) is link:
            del self._links[station_id]

    async def disconnect(self, station_id: str, reason: str) -> None:
        """Close the station's socket if this process holds it (disabled or removed)."""
        link = self._links.get(station_id)
        if link is not None:
            await link.disconnect(reason)

    async def call(self, station_id: str, request: StationRequest, timeout: float) -> StationReply:
        link = self._links.get(station_id)
        if link is None:
            return StationReply(Outcome.OFFLINE, description="station is not connected")
        if timeout <= 0:
            return StationReply(Outcome.TIMEOUT, description="deadline passed before sending")
        return await link.execute(request, timeout)
