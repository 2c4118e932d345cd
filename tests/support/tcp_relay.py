"""A TCP relay in front of a server that a test can freeze: it then forwards nothing either
way and keeps both connections open, as a dead NAT or a station without power leaves a
connection half-open (no FIN, no RST, no answer to anything)."""

from __future__ import annotations

import asyncio
import contextlib


class TcpRelay:
    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self.frozen = False
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> TcpRelay:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def freeze(self) -> None:
        """From now on, bytes either side sends are read and dropped."""
        self.frozen = True

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        for writer in self._writers:
            writer.close()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self._target_port)
        self._writers += [client_w, server_w]
        for reader, writer in ((client_r, server_w), (server_r, client_w)):
            task = asyncio.create_task(self._pipe(reader, writer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if not self.frozen:
                writer.write(data)
                await writer.drain()
        if not self.frozen:
            writer.close()
