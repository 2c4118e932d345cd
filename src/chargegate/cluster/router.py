"""The port the service uses to reach stations; `local` implements it in-process."""

from __future__ import annotations

from typing import Protocol

from chargegate.domain.station_calls import StationReply, StationRequest


class StationLink(Protocol):
    """One connected station, whatever its OCPP version."""

    ocpp_version: str

    async def execute(self, request: StationRequest, timeout: float) -> StationReply: ...

    async def disconnect(self, reason: str) -> None: ...


class StationRouter(Protocol):
    async def is_connected(self, station_id: str) -> bool:
        """Connected to this node or, in a cluster, to any live node."""
        ...

    async def call(self, station_id: str, request: StationRequest, timeout: float) -> StationReply:
        """The station's reply; OFFLINE, TIMEOUT or CONNECTION_LOST instead of raising."""
        ...
