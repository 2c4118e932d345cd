"""Connection limits in uvicorn's protocol: a deadline for a request's headers and caps on
open connections, per client address and in total, station WebSockets included.

uvicorn (0.55) arms its keep-alive timeout only after a response: a client that connects and
never finishes its headers is held forever, and enough of them exhaust the open files so that
neither OCPI requests nor stations get in. Here the headers must be complete
`http_header_timeout` seconds after the connection opens (or after the first byte of a next
request on a kept-alive one; the idle time before that is the keep-alive timeout's), a body
that stops arriving for `http_body_timeout` seconds while the gateway waits for it closes the
connection too (a body trickled a byte at a time holds a socket as long), and a
connection over a cap is answered `503` with `Connection: close` before it costs more than its
socket for a moment. The subclass of uvicorn's httptools protocol is private-ish API: pyproject
bounds uvicorn and tests/test_library_internals.py checks what this relies on."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, cast

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

# How long a refused connection stays open after its 503 (half-closed), so that the client
# reads the answer instead of a reset for the request it already sent.
REFUSAL_LINGER = 1.0
# At most one log line per this many seconds about refused connections, with their count.
REFUSAL_LOG_EVERY = 10.0


class ConnectionGuard:
    """Open connections by client address, for the caps. One per server; the event loop's
    thread only."""

    def __init__(self, per_address: int, total: int) -> None:
        self.per_address = per_address  # 0: no cap
        self.total = total  # 0: no cap
        self._address_of: dict[Any, str] = {}  # transport -> client address
        self._count: dict[str, int] = {}
        self._refused = 0
        self._logged_at = 0.0

    @property
    def open(self) -> int:
        return len(self._address_of)

    def admit(self, transport: asyncio.BaseTransport) -> str | None:
        """None when the connection may stay (and is counted); else why not."""
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple | list) and peer else ""
        if self.total and len(self._address_of) >= self.total:
            return self._refuse(
                address, f"the gateway holds its maximum of {self.total} connections"
            )
        count = self._count.get(address, 0)
        if self.per_address and count >= self.per_address:
            return self._refuse(
                address, f"{self.per_address} connections from one address are open already"
            )
        self._address_of[transport] = address
        self._count[address] = count + 1
        return None

    def release(self, transport: asyncio.BaseTransport) -> None:
        address = self._address_of.pop(transport, None)
        if address is None:
            return
        left = self._count[address] - 1
        if left:
            self._count[address] = left
        else:
            del self._count[address]

    def _refuse(self, address: str, why: str) -> str:
        self._refused += 1
        now = time.monotonic()
        if now - self._logged_at >= REFUSAL_LOG_EVERY:
            log.warning(
                "refused %d connection(s) in the last %.0f s, the latest from %s: %s "
                "(docs/security.md#limits)",
                self._refused,
                min(now - self._logged_at, REFUSAL_LOG_EVERY),
                address or "a local socket",
                why,
            )
            self._refused, self._logged_at = 0, now
        return why


class LimitedConfig(Config):
    """uvicorn's Config with what the protocols below read."""

    def __init__(
        self,
        app: Any,
        *,
        guard: ConnectionGuard,
        header_timeout: float,
        body_timeout: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self.connection_guard = guard
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout


def _refusal(why: str) -> bytes:
    body = f"{why}; try again later\n".encode()
    return (
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"retry-after: 10\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    )


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, config: Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        limited = cast(LimitedConfig, config)
        self._guard = limited.connection_guard
        self._header_timeout = limited.header_timeout
        self._header_deadline: asyncio.TimerHandle | None = None
        self._body_timeout = limited.body_timeout
        self._body_deadline: asyncio.TimerHandle | None = None
        self._body_seen = 0.0
        self._refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        why = self._guard.admit(transport)
        if why is not None:
            self._refused = True
            tcp = cast(asyncio.Transport, transport)
            tcp.write(_refusal(why))
            if tcp.can_write_eof():
                tcp.write_eof()
                self.loop.call_later(REFUSAL_LINGER, tcp.close)
            else:
                tcp.close()
            return
        super().connection_made(cast(asyncio.Transport, transport))
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # the request of a refused connection: read and dropped
        super().data_received(data)
        if self._awaiting_body():
            # Only a body that did not come whole with its headers is watched: the command
            # POSTs, which do, arm no timer.
            self._body_seen = self.loop.time()
            if self._body_deadline is None:
                self._body_deadline = self.loop.call_at(
                    self._body_seen + self._body_timeout, self._body_stalled
                )

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        self._disarm_header_deadline()
        if self._body_deadline is not None:
            self._body_deadline.cancel()
            self._body_deadline = None
        self._guard.release(self.transport)
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        super().on_headers_complete()

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(
                self._header_timeout, self._headers_too_late
            )

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _awaiting_body(self) -> bool:
        cycle = self.cycle
        return (
            cycle is not None
            and cycle.more_body
            and not cycle.response_complete
            and not cycle.disconnected
        )

    def _body_stalled(self) -> None:
        self._body_deadline = None
        if not self._awaiting_body() or self.transport.is_closing():
            return
        now = self.loop.time()
        due = self._body_seen + self._body_timeout
        if self.flow.read_paused:  # the app is not reading: not the client's delay
            due = now + self._body_timeout
        if due > now:
            self._body_deadline = self.loop.call_at(due, self._body_stalled)
            return
        log.debug("closed a connection whose request body stopped arriving")
        self.transport.close()

    def _headers_too_late(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            log.debug("closed a connection that sent no complete headers in time")
            self.transport.close()


class ReleasesGuardSlot(asyncio.Protocol):
    """Mixed into uvicorn's WebSocket protocol: a station's connection, counted when it came
    in as HTTP, leaves the count when it closes."""

    config: Config
    transport: Any

    def connection_lost(self, exc: Exception | None) -> None:
        cast(LimitedConfig, self.config).connection_guard.release(self.transport)
        super().connection_lost(exc)


def limited_websockets(base: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
    return type(f"Limited{base.__name__}", (ReleasesGuardSlot, base), {})
