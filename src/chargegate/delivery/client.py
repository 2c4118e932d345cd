"""The HTTP client that carries what we owe peers (command results, Sessions, CDRs).

httpcore's connection pool, without httpx's client layer on top: profiled under load, httpx's
per-request work (URL merging, cookie extraction, redirect and auth hooks, none of which a
POST to a peer's receiver uses) cost more CPU than the HTTP exchange itself. httpcore is the
transport httpx runs on, so connections, keep-alive and TLS behave the same."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpcore

_FAILURES = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpcore.ProxyError,
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
    def __init__(self, max_connections: int = 200, max_keepalive: int = 100) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive,
            keepalive_expiry=30.0,
        )

    async def send(
        self,
        method: str,
        url: str,
        body: Any,
        headers: dict[str, str],
        timeout: float,
    ) -> Answer:
        content = json.dumps(body, separators=(",", ":")).encode()
        header_list = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        try:
            response = await self._pool.request(
                method,
                url,
                headers=header_list,
                content=content,
                extensions={
                    "timeout": {
                        "connect": timeout,
                        "read": timeout,
                        "write": timeout,
                        "pool": timeout,
                    }
                },
            )
        except _FAILURES as exc:
            raise SendError(f"{type(exc).__name__}: {exc}") from exc
        return Answer(response.status, response.content)

    async def aclose(self) -> None:
        await self._pool.aclose()
