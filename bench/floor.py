"""The floor: the same hops as the gateway with no logic in between.

An HTTP endpoint takes the START_SESSION body, answers at once, forwards it to the station's
WebSocket as an OCPP 1.6 CALL, awaits the CALLRESULT and POSTs {"result": "ACCEPTED"} to the
`response_url` with the gateway's own delivery client. Stations connect at /ocpp/{station_id}
and get minimal answers to BootNotification, StatusNotification and Heartbeat. No database, no
validation, no auth.

`python -m bench.floor --port 8090`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from bench.common import ok_envelope
from chargegate.delivery.client import PeerClient, SendError
from chargegate.domain.outbound_policy import OutboundPolicy
from chargegate.egress import Egress

log = logging.getLogger("bench.floor")
CALL, CALLRESULT, CALLERROR = 2, 3, 4


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class StationLink:
    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.pending: dict[str, asyncio.Future[list[Any]]] = {}

    async def call(self, action: str, payload: dict[str, Any]) -> list[Any]:
        unique_id = uuid.uuid4().hex
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self.pending[unique_id] = future
        try:
            await self.websocket.send_text(json.dumps([CALL, unique_id, action, payload]))
            return await future
        finally:
            self.pending.pop(unique_id, None)


def _answer(action: str, heartbeat_interval: int) -> dict[str, Any]:
    if action == "BootNotification":
        return {"currentTime": _now(), "interval": heartbeat_interval, "status": "Accepted"}
    if action == "Heartbeat":
        return {"currentTime": _now()}
    if action in ("Authorize", "StartTransaction"):
        answer: dict[str, Any] = {"idTagInfo": {"status": "Accepted"}}
        if action == "StartTransaction":
            answer["transactionId"] = 1
        return answer
    return {}


def create_app(heartbeat_interval: int = 300) -> Starlette:
    links: dict[str, StationLink] = {}
    tasks: set[asyncio.Task[None]] = set()
    clients: list[PeerClient] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The gateway's own delivery client, with its defaults.
        # As the gateway's own: the bench's eMSP is on loopback, allowed as gateway_env allows it.
        clients.append(PeerClient(Egress(OutboundPolicy.parse("127.0.0.0/8,localhost,::1"))))
        try:
            yield
        finally:
            await clients[0].aclose()

    async def ocpp(websocket: WebSocket) -> None:
        station_id = websocket.path_params["station_id"]
        offered = websocket.scope.get("subprotocols", [])
        await websocket.accept(subprotocol="ocpp1.6" if "ocpp1.6" in offered else None)
        link = StationLink(websocket)
        links[station_id] = link
        try:
            while True:
                message = json.loads(await websocket.receive_text())
                kind, unique_id = message[0], message[1]
                if kind == CALL:
                    answer = _answer(message[2], heartbeat_interval)
                    await websocket.send_text(json.dumps([CALLRESULT, unique_id, answer]))
                elif kind in (CALLRESULT, CALLERROR):
                    future = link.pending.get(unique_id)
                    if future is not None and not future.done():
                        future.set_result(message)
        except WebSocketDisconnect:
            pass
        finally:
            if links.get(station_id) is link:
                del links[station_id]

    async def forward(body: dict[str, Any], authorization: str) -> None:
        result = "REJECTED"
        link = links.get(str(body.get("location_id")))
        if link is not None:
            evse = str(body.get("evse_uid") or "")
            payload: dict[str, Any] = {"idTag": body["token"]["uid"]}
            if evse:
                payload["connectorId"] = int(evse.rsplit("-", 1)[-1])
            reply = await link.call("RemoteStartTransaction", payload)
            if reply[0] == CALLRESULT and reply[2].get("status") == "Accepted":
                result = "ACCEPTED"
        try:
            await clients[0].send(
                "POST",
                body["response_url"],
                {"result": result},
                {"Authorization": authorization, "Content-Type": "application/json"},
                timeout=10.0,
            )
        except SendError as exc:
            log.warning("callback to %s failed: %r", body["response_url"], exc)

    async def command(request: Request) -> Response:
        body = json.loads(await request.body())
        task = asyncio.create_task(forward(body, request.headers.get("authorization", "")))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return JSONResponse(ok_envelope({"result": "ACCEPTED", "timeout": 600}))

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "stations": len(links)})

    return Starlette(
        routes=[
            Route("/ocpi/cpo/{version}/commands/{command}", command, methods=["POST"]),
            Route("/healthz", healthz),
            WebSocketRoute("/ocpp/{station_id}", ocpp),
        ],
        lifespan=lifespan,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--heartbeat-interval", type=int, default=300)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    # As `chargegate serve` runs uvicorn: default loop (uvloop) and HTTP parser, no compression,
    # no WebSocket pings.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(
            create_app(args.heartbeat_interval),
            host=args.host,
            port=args.port,
            log_level="warning",
            ws_per_message_deflate=False,
            ws_ping_interval=None,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
