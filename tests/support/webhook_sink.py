"""An eMSP backend's webhook endpoint for tests: records every POST, fails the first ones."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .servers import LiveServer


@dataclass
class Hook:
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookSink:
    fail_next: int = 0  # answer this many POSTs with HTTP 503 first
    received: list[Hook] = field(default_factory=list)
    refused: int = 0
    server: LiveServer | None = None
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{self.server.base_url}/hook"

    async def start(self) -> WebhookSink:
        async def hook(request: Request) -> Response:
            if self.fail_next > 0:
                self.fail_next -= 1
                self.refused += 1
                return Response("busy", status_code=503)
            async with self._arrived:
                self.received.append(Hook(dict(request.headers), await request.body()))
                self._arrived.notify_all()
            return Response(status_code=204)

        self.server = await LiveServer(
            Starlette(routes=[Route("/hook", hook, methods=["POST"])])
        ).start()
        return self

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Hook]:
        async def enough() -> list[Hook]:
            async with self._arrived:
                await self._arrived.wait_for(lambda: len(self.received) >= count)
                return list(self.received)

        return await asyncio.wait_for(enough(), timeout)
