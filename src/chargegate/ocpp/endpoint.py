"""The OCPP-J WebSocket endpoint: `/ocpp/{station_id}`, subprotocol picks the handler."""

from __future__ import annotations

import logging
import re

from starlette.websockets import WebSocket, WebSocketDisconnect

from chargegate.gateway import gateway_of

from .connection import FrameLimits, LoggedConnection
from .v16 import StationHandler16
from .v201 import StationHandler201

log = logging.getLogger(__name__)

SUBPROTOCOLS: dict[str, type[StationHandler16] | type[StationHandler201]] = {
    "ocpp2.0.1": StationHandler201,
    "ocpp1.6": StationHandler16,
}
# OCPP-J: the station identity is the last path segment; keep it to a sane, loggable set.
_STATION_ID = re.compile(r"^[A-Za-z0-9._:\-*+]{1,48}$")


def choose_subprotocol(offered: list[str]) -> str | None:
    for name in offered:
        if name in SUBPROTOCOLS:
            return name
    return None


async def ocpp_websocket(websocket: WebSocket) -> None:
    station_id = websocket.path_params["station_id"]
    offered = list(websocket.scope.get("subprotocols", []))
    if not _STATION_ID.match(station_id):
        log.warning("refused OCPP connection: invalid station id %r", station_id)
        await websocket.close(code=1008, reason="invalid station id")
        return
    subprotocol = choose_subprotocol(offered)
    if subprotocol is None and offered:
        log.warning(
            "refused OCPP connection of %s: offers subprotocols %s, we speak %s",
            station_id,
            offered,
            sorted(SUBPROTOCOLS),
        )
        await websocket.close(code=1002, reason="unsupported OCPP subprotocol")
        return
    if subprotocol is None:
        # No Sec-WebSocket-Protocol at all: some 1.6 stations omit it; 1.6 is the only guess
        # that can work.
        log.info("station %s offered no subprotocol; assuming ocpp1.6", station_id)
    await websocket.accept(subprotocol=subprotocol)
    gateway = gateway_of(websocket)
    handler_class = SUBPROTOCOLS[subprotocol or "ocpp1.6"]
    settings = gateway.settings
    connection = LoggedConnection(websocket, station_id, gateway.comm_log, FrameLimits.of(settings))
    handler = handler_class(
        station_id,
        connection,
        gateway.station_events,
        settings.heartbeat_interval,
        settings.ocpp_max_connectors,
    )
    await gateway.station_events.connected(station_id, handler.ocpp_version)
    await gateway.router.attach(station_id, handler)
    log.info("station %s connected (%s)", station_id, subprotocol or "ocpp1.6")
    try:
        await handler.serve()
    except WebSocketDisconnect:
        pass
    except Exception:
        log.exception("station %s connection failed", station_id)
    finally:
        gateway.router.detach(station_id, handler)
        log.info("station %s disconnected", station_id)
