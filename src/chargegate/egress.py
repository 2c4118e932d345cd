"""The way out: every outgoing request resolves its host once, checks each address against the
outbound policy (domain/outbound_policy.py) and connects to a checked address.

`Egress` is the policy with the system resolver. `http_client` is the httpx client for our
other outgoing calls (credentials handshakes, commands we send as eMSP, webhooks): its
transport is an httpcore connection pool with a network backend of ours, both httpcore's
public API, so the pool still keys connections by host *name* (TLS SNI and the certificate
check stay on the name, and two names on one address never share a TLS connection) while
`connect_tcp` connects to the address it checked. The delivery client (delivery/client.py)
asks `Egress.addresses` itself. Behind an egress proxy (HTTP(S)_PROXY in the environment) the
proxy resolves, so the check runs on the URL before the request (docs/security.md)."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import typing
import urllib.request
from collections.abc import AsyncIterator, Sequence

import httpcore
import httpx

from chargegate.domain.outbound_policy import (
    OutboundPolicy,
    OutboundRefused,
    Resolver,
    origin_of,
)

log = logging.getLogger(__name__)


class Unresolvable(OutboundRefused):
    """The name has no address we could find."""


async def system_resolver(host: str, port: int) -> list[str]:
    """getaddrinfo through the event loop (its thread pool): addresses in the system's order."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:  # UnicodeError: a name IDNA cannot encode (`a..b`)
        raise Unresolvable(host, f"{host} does not resolve: {exc}") from exc
    found: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        if sockaddr[0] not in found:
            found.append(str(sockaddr[0]))
    return found


class Egress:
    def __init__(self, policy: OutboundPolicy, resolve: Resolver = system_resolver) -> None:
        self.policy = policy
        self._resolve = resolve

    async def addresses(self, host: str, port: int) -> list[str]:
        """Checked addresses for host:port; raises OutboundRefused."""
        return await self.policy.addresses(host, port, self._resolve)

    async def check_url(self, url: str, *, via_proxy: bool = False) -> None:
        """Raises OutboundRefused for a URL we would not call (scheme, host, addresses).
        `via_proxy`: a name we cannot resolve ourselves is left to the proxy, which is the
        network's own egress control (behind one, local DNS often knows no outside names)."""
        origin = origin_of(url)
        try:
            await self.addresses(origin.host, origin.port)
        except Unresolvable:
            if not via_proxy:
                raise


class RefusedConnect(httpcore.ConnectError):
    """httpx raises it as httpx.ConnectError (so callers' handling of a failed call holds);
    the message says why."""


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, egress: Egress) -> None:
        self._egress = egress
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            # The lookup counts against the connect timeout, as it would inside httpcore.
            async with asyncio.timeout(timeout):
                addresses = await self._egress.addresses(host, port)
        except OutboundRefused as exc:
            raise RefusedConnect(str(exc)) from exc
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"no address for {host} within {timeout}s") from exc
        failure: Exception | None = None
        for address in addresses:  # the checked ones, in order; never a fresh lookup
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise RefusedConnect("Unix sockets are not an outbound destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# httpcore's exceptions as httpx names them, the most specific first.
_AS_HTTPX: Sequence[tuple[type[Exception], type[httpx.HTTPError]]] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


def _as_httpx(exc: Exception) -> Exception:
    for theirs, ours in _AS_HTTPX:
        if isinstance(exc, theirs):
            return ours(str(exc))
    return exc


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: typing.AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._stream:
                yield part
        except Exception as exc:
            raise _as_httpx(exc) from exc

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            await close()


class GuardedTransport(httpx.AsyncBaseTransport):
    """httpx transport over httpcore's pool with the guarded network backend."""

    def __init__(self, egress: Egress, limits: httpx.Limits, verify: ssl.SSLContext) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=verify,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(egress),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, typing.AsyncIterable)
        url = request.url
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            answer = await self._pool.handle_async_request(core)
        except Exception as exc:
            raise _as_httpx(exc) from exc
        assert isinstance(answer.stream, typing.AsyncIterable)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_ResponseStream(answer.stream),
            extensions=answer.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


def proxies_in_environment() -> set[str]:
    """The schemes (http, https) an egress proxy from the environment serves."""
    found = urllib.request.getproxies_environment()
    return {scheme for scheme in ("http", "https") if found.get(scheme) or found.get("all")}


def http_client(egress: Egress, limits: httpx.Limits) -> httpx.AsyncClient:
    """The httpx client for every outgoing call but the delivery client's."""
    if proxies_in_environment():
        # The proxy resolves the name: check it before the request (docs/security.md).
        async def check(request: httpx.Request) -> None:
            try:
                await egress.check_url(str(request.url), via_proxy=True)
            except OutboundRefused as exc:
                raise httpx.ConnectError(str(exc), request=request) from exc

        return httpx.AsyncClient(limits=limits, event_hooks={"request": [check]})
    transport = GuardedTransport(egress, limits, httpx.create_ssl_context())
    return httpx.AsyncClient(transport=transport, trust_env=False)
