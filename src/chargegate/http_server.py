"""How uvicorn runs the gateway: one builder for `chargegate serve` and the tests' server, so
that tests exercise the limits production runs with (docs/security.md#limits)."""

from __future__ import annotations

import resource
from typing import Any

from uvicorn.protocols.websockets.auto import AutoWebSocketsProtocol

from chargegate.limits.connections import (
    ConnectionGuard,
    LimitedConfig,
    LimitedHttpToolsProtocol,
    limited_websockets,
)
from chargegate.redaction import redact_access_log
from chargegate.settings import Settings

# Open files kept for what is not a client connection (database, log files, outgoing HTTP
# connections to peers, Redis), when the total cap follows the open-file limit: a tenth of
# the limit, and at least this many.
RESERVED_FILES = 100


def total_connection_cap(settings: Settings) -> int:
    """`max_connections`, or with 0 what the open-file limit leaves after the reserve."""
    if settings.max_connections:
        return settings.max_connections
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 0
    return max(soft - max(RESERVED_FILES, soft // 10), 1)


def server_config(app: Any, settings: Settings, **options: Any) -> LimitedConfig:
    """uvicorn's Config for `app` with the gateway's limits; `options` are uvicorn's own
    (host, port, log_level, …)."""
    assert AutoWebSocketsProtocol is not None  # uvicorn[standard] brings websockets
    # Pings find a half-open connection that OCPP heartbeats (minutes apart) would find late;
    # a missing pong closes it, and the station goes offline (docs/guarantees.md#liveness).
    options.setdefault("ws_ping_interval", settings.ws_ping_interval or None)
    options.setdefault("ws_ping_timeout", settings.ws_ping_timeout or None)
    options.setdefault("ws_per_message_deflate", settings.ws_per_message_deflate)
    # A frame past the OCPP cap is closed with 1009 before it is read whole.
    options.setdefault("ws_max_size", settings.ocpp_max_frame_bytes)
    config = LimitedConfig(
        app,
        guard=ConnectionGuard(settings.max_connections_per_address, total_connection_cap(settings)),
        header_timeout=settings.http_header_timeout,
        body_timeout=settings.http_body_timeout,
        http=LimitedHttpToolsProtocol,
        ws=limited_websockets(AutoWebSocketsProtocol),  # type: ignore[arg-type]
        timeout_keep_alive=settings.http_keep_alive_timeout,
        **options,
    )
    redact_access_log()  # after the Config, which configures uvicorn's loggers
    return config
