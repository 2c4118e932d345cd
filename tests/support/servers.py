"""Run ASGI apps under real uvicorn on a loopback port inside the test's event loop, and the
test servers built on them for as long as a fixture lasts."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

import uvicorn

from chargegate.http_server import server_config
from chargegate.settings import Settings


class Startable(Protocol):
    async def start(self) -> Any: ...

    async def stop(self) -> None: ...


S = TypeVar("S", bound=Startable)


@asynccontextmanager
async def running(server: S) -> AsyncIterator[S]:
    """`server` started for the block, and stopped after it however the block ends."""
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class LiveServer:
    """uvicorn serving `app` on a socket bound before start, so the port is known up front;
    with `settings`, configured as `chargegate serve` configures it (http_server.py)."""

    def __init__(
        self,
        app: Any,
        sock: socket.socket | None = None,
        settings: Settings | None = None,
        **options: Any,
    ) -> None:
        """`options`: more uvicorn.Config settings (TLS files, for one)."""
        self.sock = sock or bound_socket()
        self.port = self.sock.getsockname()[1]
        scheme = "https" if options.get("ssl_certfile") else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self.port}"
        config = server_config(
            app, settings or Settings(), log_level="warning", lifespan="on", **options
        )
        self.server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> LiveServer:
        self._task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task
        self.sock.close()
