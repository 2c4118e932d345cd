"""The ASGI application uvicorn serves: FastAPI, with the OCPI request ids and the command lane
in front of FastAPI's own middleware stack (ocpi/command_lane.py says why the lane is there)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from chargegate.ocpi.command_lane import CommandLane
from chargegate.ocpi.middleware import OcpiRequestIds


class GatewayApp(FastAPI):
    def __init__(self, *, command_lane: bool = True, **kwargs: Any) -> None:
        """`command_lane=False` leaves the command POST to its FastAPI route (tests compare
        the two)."""
        super().__init__(**kwargs)
        routed = super().__call__
        self.front = OcpiRequestIds(CommandLane(routed, self) if command_lane else routed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await super().__call__(scope, receive, send)
        else:
            await self.front(scope, receive, send)
