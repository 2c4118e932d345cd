"""One client-side HTTP/1.1 connection: an asyncio protocol whose answers httptools parses.

Not httpcore (and so httpx) under the delivery client: its h11 connection cost as much CPU per
POST as the floor's whole command (docs/performance.md#delivery-client). httptools is the C
parser (llhttp) uvicorn already reads our own requests with; what is left here by hand is
writing a request head and deciding whether the connection can carry the next request.
"""

from __future__ import annotations

import asyncio
from typing import cast

import httptools


class ExchangeError(Exception):
    """The connection failed before a whole answer arrived. `kind` names the failure the way
    httpx users know it (ReadError, RemoteProtocolError)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Http1Connection(asyncio.Protocol):
    """One request at a time; after a complete answer with keep-alive, `reusable` says so."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[tuple[int, bytes]] | None = None
        self._status = 0
        self._body: list[bytes] = []
        self._framed = False  # the answer has a Content-Length or is chunked
        self._headers_done = False
        self._keep_alive = False
        self._closed = False
        self.idle_since = 0.0

    @property
    def reusable(self) -> bool:
        return self._keep_alive and not self._closed

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send a whole request and wait for its whole answer: (status, body)."""
        if self._transport is None or self._closed:
            raise ExchangeError("ReadError", "the connection is closed")
        self._answer = asyncio.get_running_loop().create_future()
        self._status, self._body = 0, []
        self._framed = self._headers_done = self._keep_alive = False
        self._transport.write(request)
        try:
            return await self._answer
        finally:
            self._answer = None

    def close(self) -> None:
        self._closed = True
        if self._transport is not None:
            self._transport.close()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._answer is None:
            # Bytes nobody asked for (or a late answer to a request that timed out): the
            # stream can no longer be trusted to line answers up with requests.
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail("RemoteProtocolError", f"the peer's answer is not HTTP/1.1: {exc}")
            self.close()

    def eof_received(self) -> bool:
        if self._answer is not None and not self._answer.done():
            if self._headers_done and not self._framed:
                # An answer with neither Content-Length nor chunks ends where the stream does.
                self._complete()
            else:
                self._fail("RemoteProtocolError", "the peer closed the connection mid-answer")
        self._closed = True
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._fail("ReadError", str(exc) if exc else "the peer closed the connection")

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self._framed = True

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self._status < 200:
            self._body, self._framed, self._headers_done = [], False, False
            return  # an interim answer (100 Continue): the real one follows
        self._keep_alive = self._parser.should_keep_alive()
        self._complete()

    def _complete(self) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_result((self._status, b"".join(self._body)))

    def _fail(self, kind: str, message: str) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(ExchangeError(kind, message))
