"""The OCPP-J WebSocket endpoint: `/ocpp/{station_id}`, admission decides before the handshake
is accepted (docs/security.md#station-admission), the subprotocol picks the handler."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from chargegate.gateway import gateway_of
from chargegate.service.station_admission import Admission, Refusal

from .connection import FrameLimits, LoggedConnection
from .liveness import serve_while_heard
from .v16 import StationHandler16
from .v201 import StationHandler201

log = logging.getLogger(__name__)

SUBPROTOCOLS: dict[str, type[StationHandler16] | type[StationHandler201]] = {
    "ocpp2.0.1": StationHandler201,
    "ocpp1.6": StationHandler16,
}
# ASGI's denial-response extension (uvicorn has it): a refused handshake gets a real HTTP status.
_DENIAL = "websocket.http.response"
# Seconds the close of a silent station's socket may take (its TCP buffer may be full).
_CLOSE_WAIT = 2.0
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="chargegate OCPP", charset="UTF-8"'}


def choose_subprotocol(offered: list[str]) -> str | None:
    for name in offered:
        if name in SUBPROTOCOLS:
            return name
    return None


async def ocpp_websocket(websocket: WebSocket) -> None:
    station_id = websocket.path_params["station_id"]
    offered = list(websocket.scope.get("subprotocols", []))
    gateway = gateway_of(websocket)
    admission = await gateway.admission.admit(station_id, websocket.headers.get("authorization"))
    if not admission.admitted:
        await _refuse(websocket, station_id, admission)
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
    log.info(
        "station %s connected (%s, %s)",
        station_id,
        subprotocol or "ocpp1.6",
        "authenticated" if admission.authenticated else admission.reason or "no password",
    )
    limit = settings.heartbeat_interval * settings.heartbeat_grace_factor
    try:
        if not await serve_while_heard(handler.serve(), connection.last_heard, limit):
            log.warning(
                "station %s sent nothing for %.0f s (heartbeat interval %d s): taken as gone",
                station_id,
                limit,
                settings.heartbeat_interval,
            )
            # Offline now, whether or not the close below ever reaches it.
            gateway.router.detach(station_id, handler)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CLOSE_WAIT):
                    await handler.disconnect("no frame within the heartbeat interval")
    except WebSocketDisconnect:
        pass
    except Exception:
        log.exception("station %s connection failed", station_id)
    finally:
        gateway.router.detach(station_id, handler)
        log.info("station %s disconnected", station_id)


async def _refuse(websocket: WebSocket, station_id: str, admission: Admission) -> None:
    """Answer the handshake with the refusal's HTTP status (401 with a Basic challenge), or,
    where the server lacks the denial extension, close before accepting (HTTP 403)."""
    assert admission.refusal is not None
    status = admission.refusal.value
    client = websocket.client.host if websocket.client else "?"
    # Never the credentials; an invalid id is cut short so it cannot flood the log.
    log.warning(
        "refused OCPP connection of %r from %s: %s (HTTP %d)",
        station_id[:64],
        client,
        admission.reason,
        status,
    )
    if _DENIAL in websocket.scope.get("extensions", {}):
        headers = _CHALLENGE if admission.refusal is Refusal.CREDENTIALS else None
        response = PlainTextResponse(admission.reason, status_code=status, headers=headers)
        await websocket.send_denial_response(response)
    else:
        await websocket.close(code=1008, reason=admission.reason)
