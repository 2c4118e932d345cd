"""A raw OCPP-J client for the hostile-frame tests: sends any text or bytes and reads frames
back, with a Heartbeat probe that proves the gateway still answers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

VERSIONS = ["ocpp1.6", "ocpp2.0.1"]
ANSWER_WITHIN = 5.0


def boot_payload(subprotocol: str) -> dict[str, Any]:
    if subprotocol == "ocpp1.6":
        return {"chargePointVendor": "Fuzz", "chargePointModel": "Frames"}
    return {"reason": "PowerUp", "chargingStation": {"vendorName": "Fuzz", "model": "Frames"}}


async def open_station(ws_url: str, station_id: str, subprotocol: str) -> ClientConnection:
    return await connect(
        f"{ws_url}/{station_id}",
        subprotocols=[Subprotocol(subprotocol)],
        max_size=None,
        ping_interval=None,
    )


async def next_frame(ws: ClientConnection) -> list[Any]:
    async with asyncio.timeout(ANSWER_WITHIN):
        raw = await ws.recv()
    frame: list[Any] = json.loads(raw)
    return frame


async def probe(
    ws: ClientConnection, subprotocol: str, unique_id: str = "probe"
) -> list[list[Any]]:
    """Send a BootNotification and read up to its CALLRESULT; the frames before it come back."""
    await ws.send(json.dumps([2, unique_id, "BootNotification", boot_payload(subprotocol)]))
    before: list[list[Any]] = []
    while True:
        frame = await next_frame(ws)
        if frame[:2] == [3, unique_id]:
            assert frame[2]["status"] == "Accepted"
            return before
        before.append(frame)
