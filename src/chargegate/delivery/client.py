"""The HTTP client that carries what we owe peers (command results, Sessions, CDRs).

httpcore's HTTP/1.1 connections (the transport httpx runs on, so requests, keep-alive and TLS
behave the same), on asyncio streams (delivery/asyncio_backend.py), kept in a pool of our own.
Why not httpx: profiled under load, its per-request work (URL merging, cookie extraction,
redirect and auth hooks, none of which a POST to a peer's receiver uses) cost more CPU than the
exchange. Why not httpcore's pool: its bookkeeping rescans every connection for every queued
request, on every request and release (encode/httpcore#1035, open); with 50 results in flight
that was over a millisecond of CPU per POST. Here a request takes an idle connection to its
origin or opens one, and gives it back if it is still usable: O(1)."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections import deque
from dataclasses import dataclass
from typing import Any

import httpcore

from .asyncio_backend import AsyncioBackend

_FAILURES = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    ValueError,  # a malformed URL
)


class SendError(Exception):
    """The request did not get an HTTP answer (refused, timed out, reset, bad URL)."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content: bytes

    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


class PeerClient:
    def __init__(
        self,
        max_connections: int = 200,
        max_keepalive: int = 100,
        keepalive_expiry: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """At most `max_connections` requests at once (others wait, within their timeout); up
        to `max_keepalive` idle connections kept, each for `keepalive_expiry` seconds."""
        self._slots = asyncio.Semaphore(max_connections)
        self._max_keepalive = max_keepalive
        self._keepalive_expiry = keepalive_expiry
        # One context for every connection: building one loads the CA bundle.
        self._ssl_context = ssl_context or httpcore.default_ssl_context()
        self._backend = AsyncioBackend()
        # By (scheme, host, port): httpcore's Origin compares by value but does not hash.
        self._idle: dict[tuple[bytes, bytes, int], deque[httpcore.AsyncHTTPConnection]] = {}
        self._idle_count = 0

    async def send(
        self,
        method: str,
        url: str,
        body: Any,
        headers: dict[str, str],
        timeout: float,
    ) -> Answer:
        content = json.dumps(body, separators=(",", ":")).encode()
        try:
            target = httpcore.URL(url)
            header_list = [
                (b"Host", _host_header(target)),
                (b"Content-Length", str(len(content)).encode()),
                *((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
            ]
            request = httpcore.Request(
                method,
                target,
                headers=header_list,
                content=content,
                extensions={"timeout": {"connect": timeout, "read": timeout, "write": timeout}},
            )
            if request.url.scheme not in (b"http", b"https") or not request.url.host:
                raise httpcore.UnsupportedProtocol(f"cannot send to {url!r}")
            try:
                async with asyncio.timeout(timeout):
                    await self._slots.acquire()
            except TimeoutError as exc:
                raise httpcore.PoolTimeout("every connection stayed busy") from exc
            try:
                return await self._exchange(request)
            finally:
                self._slots.release()
        except _FAILURES as exc:
            raise SendError(f"{type(exc).__name__}: {exc}") from exc

    async def _exchange(self, request: httpcore.Request) -> Answer:
        origin = request.url.origin
        connection = await self._take_idle(origin) or httpcore.AsyncHTTPConnection(
            origin,
            ssl_context=self._ssl_context,
            keepalive_expiry=self._keepalive_expiry,
            network_backend=self._backend,
        )
        try:
            response = await connection.handle_async_request(request)
            try:
                content = await response.aread()
            finally:
                await response.aclose()
        except BaseException:
            await connection.aclose()
            raise
        await self._give_back(origin, connection)
        return Answer(response.status, content)

    async def _take_idle(self, origin: httpcore.Origin) -> httpcore.AsyncHTTPConnection | None:
        idle = self._idle.get(_key(origin))
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to have lapsed
            self._idle_count -= 1
            # has_expired: past its keep-alive, or the peer closed it while it was idle.
            if connection.is_idle() and not connection.has_expired():
                return connection
            await connection.aclose()
        return None

    async def _give_back(
        self, origin: httpcore.Origin, connection: httpcore.AsyncHTTPConnection
    ) -> None:
        if not connection.is_idle() or self._idle_count >= self._max_keepalive:
            await connection.aclose()
            return
        self._idle.setdefault(_key(origin), deque()).append(connection)
        self._idle_count += 1

    async def aclose(self) -> None:
        for idle in self._idle.values():
            while idle:
                await idle.pop().aclose()
        self._idle.clear()
        self._idle_count = 0


def _key(origin: httpcore.Origin) -> tuple[bytes, bytes, int]:
    return origin.scheme, origin.host, origin.port


_DEFAULT_PORTS = {b"http": 80, b"https": 443}


def _host_header(url: httpcore.URL) -> bytes:
    if url.port is None or url.port == _DEFAULT_PORTS.get(url.scheme):
        return url.host
    return b"%b:%d" % (url.host, url.port)
