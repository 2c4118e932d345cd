"""Adapts a Starlette WebSocket to the recv/send interface the `ocpp` library expects,
writing every frame to the communication log on the way."""

from __future__ import annotations

from starlette.websockets import WebSocket

from chargegate.store.comm_log import CommunicationLog


class LoggedConnection:
    def __init__(self, websocket: WebSocket, station_id: str, comm_log: CommunicationLog) -> None:
        self._ws = websocket
        self._station_id = station_id
        self._log = comm_log
        self._action_of_call: dict[str, str] = {}

    async def recv(self) -> str:
        raw = await self._ws.receive_text()
        self._log.record(self._station_id, "IN", raw, self._action_of_call)
        return raw

    async def send(self, raw: str) -> None:
        self._log.record(self._station_id, "OUT", raw, self._action_of_call)
        await self._ws.send_text(raw)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._ws.close(code=code, reason=reason)
