"""The HTTP client that carries what we owe peers (command results, Sessions, CDRs).

Keep-alive HTTP/1.1 connections (delivery/http1.py) in a pool of our own: a request takes the
most recently used idle connection to its origin or opens one, and gives it back if it is still
usable, O(1). Not httpx or httpcore's pool: httpx's per-request work (URL merging, cookies,
redirect and auth hooks, none of which a POST to a peer's receiver uses) and httpcore's pool
scan (encode/httpcore#1035) cost more CPU than the exchange
(docs/performance.md#delivery-client). Failures keep httpx's names (ConnectError, ReadTimeout,
…) so a log line reads the same as one from our other outgoing calls.

Behind an egress proxy (HTTP_PROXY, HTTPS_PROXY or ALL_PROXY in the environment, as curl and
httpx read them), requests to a scheme with a proxy go through httpx, which speaks to proxies
(absolute-form requests, CONNECT tunnels) and applies NO_PROXY its own way, as our other
outgoing calls do; the pool above serves only what goes direct."""

from __future__ import annotations

import asyncio
import ssl
import time
import urllib.request
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from chargegate import json_text
from chargegate.domain.outbound_policy import OutboundPolicy, OutboundRefused
from chargegate.egress import Egress

from .http1 import ExchangeError, Http1Connection


class SendError(Exception):
    """The request did not get an HTTP answer (refused, timed out, reset, bad URL)."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content: bytes

    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json_text.loads(self.content)


@dataclass(frozen=True, slots=True)
class _Target:
    origin: tuple[str, str, int]  # scheme, host, port: what a connection can be reused for
    host_header: str
    path: str


_DEFAULT_PORTS = {"http": 80, "https": 443}
# Characters a request target may carry as they are; anything else is percent-encoded.
_SAFE_IN_TARGET = "/?#[]@!$&'()*+,;=-._~%:"


class PeerClient:
    def __init__(
        self,
        egress: Egress | None = None,
        max_connections: int = 50,
        max_keepalive: int = 50,
        keepalive_expiry: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """Per origin (scheme, host, port: one peer's receiver): at most `max_connections`
        requests at once (others to it wait, within their timeout) and up to `max_keepalive`
        idle connections kept, each for `keepalive_expiry` seconds. Origins share nothing, so
        a peer that never answers holds its own connections and no other's (a bulkhead).
        Proxies are read from the environment once, here. Every connection goes to an address
        `egress` checked (default: no allow-list, public addresses only)."""
        self._egress = egress or Egress(OutboundPolicy())
        self._slots: dict[tuple[str, str, int], asyncio.Semaphore] = {}
        self._max_connections = max_connections
        found = urllib.request.getproxies_environment()
        self._proxied_schemes = {
            scheme for scheme in _DEFAULT_PORTS if found.get(scheme) or found.get("all")
        }
        self._via_proxy: httpx.AsyncClient | None = None
        self._max_keepalive = max_keepalive
        self._keepalive_expiry = keepalive_expiry
        # One context for every connection: building one loads the CA bundle.
        self._ssl_context = ssl_context or ssl.create_default_context()
        self._idle: dict[tuple[str, str, int], deque[Http1Connection]] = {}

    async def send(
        self,
        method: str,
        url: str,
        body: Any,
        headers: dict[str, str],
        timeout: float,
    ) -> Answer:
        """`timeout` bounds the whole exchange: waiting for a free slot, connecting, the TLS
        handshake and the answer."""
        target = _parse(url)
        content = json_text.dumps_bytes(body)
        # Built first whichever way it goes: it refuses headers that would smuggle a line.
        request = _request_head(method, target, headers, len(content)) + content
        if target.origin[0] in self._proxied_schemes:
            # The proxy resolves the name; the URL is checked before it gets it.
            try:
                await self._egress.check_url(url, via_proxy=True)
            except OutboundRefused as exc:
                raise SendError(f"ConnectError: {exc}") from exc
            return await self._send_via_proxy(method, url, content, headers, timeout, target)
        slots = self._slots.get(target.origin)
        if slots is None:
            slots = self._slots[target.origin] = asyncio.Semaphore(self._max_connections)
        try:
            async with asyncio.timeout(timeout):
                await slots.acquire()
        except TimeoutError as exc:
            raise SendError(
                f"PoolTimeout: every connection to {target.host_header} stayed busy"
            ) from exc
        waiting_for = "ConnectTimeout: no connection to"
        try:
            async with asyncio.timeout(timeout):
                connection = await self._take_idle(target.origin) or await self._connect(target)
                waiting_for = "ReadTimeout: no answer from"
                try:
                    status, answer = await connection.exchange(request)
                except BaseException:
                    connection.close()
                    raise
        except TimeoutError as exc:
            raise SendError(f"{waiting_for} {target.host_header} within {timeout}s") from exc
        except ExchangeError as exc:
            raise SendError(f"{exc.kind}: {exc}") from exc
        finally:
            slots.release()
        self._give_back(target.origin, connection)
        return Answer(status, answer)

    async def _send_via_proxy(
        self,
        method: str,
        url: str,
        content: bytes,
        headers: dict[str, str],
        timeout: float,
        target: _Target,
    ) -> Answer:
        if self._via_proxy is None:
            self._via_proxy = httpx.AsyncClient(
                trust_env=True,
                verify=self._ssl_context,
                limits=httpx.Limits(
                    # One proxy carries every origin: its own, larger budget.
                    max_connections=max(self._max_connections, 200),
                    max_keepalive_connections=self._max_keepalive,
                    keepalive_expiry=self._keepalive_expiry,
                ),
            )
        try:
            async with asyncio.timeout(timeout):
                response = await self._via_proxy.request(
                    method, url, content=content, headers=headers, timeout=timeout
                )
        except TimeoutError as exc:
            raise SendError(
                f"ReadTimeout: no answer from {target.host_header} within {timeout}s"
            ) from exc
        except httpx.HTTPError as exc:
            raise SendError(f"{type(exc).__name__}: {exc or 'through the proxy'}") from exc
        return Answer(response.status_code, response.content)

    async def _connect(self, target: _Target) -> Http1Connection:
        scheme, host, port = target.origin
        tls = self._ssl_context if scheme == "https" else None
        loop = asyncio.get_running_loop()
        try:
            addresses = await self._egress.addresses(host, port)
        except OutboundRefused as exc:
            raise SendError(f"ConnectError: {exc}") from exc
        except (UnicodeError, ValueError) as exc:  # a name IDNA cannot encode (`a..b`)
            raise SendError(f"ConnectError: cannot resolve {host!r}: {exc}") from exc
        failure: BaseException | None = None
        # Resolved and checked once: connect to those addresses, never to a fresh lookup of
        # the name (no DNS rebinding window); TLS still verifies the certificate for the name.
        for address in addresses:
            try:
                _, connection = await loop.create_connection(
                    Http1Connection, address, port, ssl=tls, server_hostname=host if tls else None
                )
                return connection
            except (OSError, ssl.SSLError) as exc:
                failure = exc
        raise SendError(f"ConnectError: {failure or 'no address'}") from failure

    async def _take_idle(self, origin: tuple[str, str, int]) -> Http1Connection | None:
        idle = self._idle.get(origin)
        oldest_kept = time.monotonic() - self._keepalive_expiry
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to have lapsed
            # Not reusable: the peer closed it while it was idle (the loop read the EOF).
            if connection.reusable and connection.idle_since >= oldest_kept:
                return connection
            connection.close()
        return None

    def _give_back(self, origin: tuple[str, str, int], connection: Http1Connection) -> None:
        idle = self._idle.get(origin)
        if idle is None:
            idle = self._idle[origin] = deque()
        if not connection.reusable or len(idle) >= self._max_keepalive:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)

    async def aclose(self) -> None:
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        self._idle.clear()
        if self._via_proxy is not None:
            await self._via_proxy.aclose()
            self._via_proxy = None


def origin_of_url(url: str) -> str:
    """scheme://host:port of a URL, for a log line: no path, no query, no credentials."""
    try:
        target = _parse(url)
    except SendError:
        return "(unparseable URL)"
    scheme, host, port = target.origin
    return f"{scheme}://{host}:{port}"


def _parse(url: str) -> _Target:
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError as exc:  # a port that is not a number, a malformed IPv6 host
        raise SendError(f"UnsupportedProtocol: cannot send to {url!r}: {exc}") from exc
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or port is None:
        raise SendError(f"UnsupportedProtocol: cannot send to {url!r}")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    if not path.isascii() or " " in path:
        path = quote(path, safe=_SAFE_IN_TARGET)
    return _Target((parts.scheme, parts.hostname, port), parts.netloc.rpartition("@")[2], path)


def _request_head(method: str, target: _Target, headers: dict[str, str], length: int) -> bytes:
    lines = [
        f"{method} {target.path} HTTP/1.1",
        f"Host: {target.host_header}",
        f"Content-Length: {length}",
    ]
    for name, value in headers.items():
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
            # A value carrying a line break would smuggle a header (or a request) of its own.
            raise SendError(f"LocalProtocolError: header {name!r} holds a line break")
        lines.append(f"{name}: {value}")
    lines.append("\r\n")
    try:
        return "\r\n".join(lines).encode("latin-1")
    except UnicodeEncodeError as exc:
        raise SendError(f"LocalProtocolError: a header is not Latin-1: {exc}") from exc
