"""What every OCPP handler does the same way, whatever its version: serve the socket, make one
call at a time with a deadline, and turn the answer into a version-free reply."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from types import ModuleType
from typing import Any

from ocpp.exceptions import OCPPError

from chargegate.domain.station_calls import Outcome, StationReply, StationRequest
from chargegate.service.station_events import StationEvents

from .connection import LoggedConnection


class StationLinkMixin:
    """Mixed into an `ocpp` ChargePoint subclass; `table` is that version's translation table
    (a module with `to_call(request)` and `to_reply(result, unique_id)`)."""

    table: ModuleType
    _connection: Any

    def __init__(
        self,
        station_id: str,
        connection: LoggedConnection,
        events: StationEvents,
        heartbeat_interval: int,
    ) -> None:
        # The library's own response timeout is not used: each call carries its own deadline.
        super().__init__(station_id, connection, response_timeout=24 * 3600)  # type: ignore[call-arg]
        self._events = events
        self._heartbeat_interval = heartbeat_interval
        self._closed = asyncio.Event()

    async def serve(self) -> None:
        try:
            await self.start()  # type: ignore[attr-defined]
        finally:
            self._closed.set()

    async def disconnect(self, reason: str) -> None:
        self._closed.set()
        with contextlib.suppress(Exception):
            await self._connection.close(code=1000, reason=reason)

    async def execute(self, request: StationRequest, timeout: float) -> StationReply:
        """Send one call; waiting for the station's one-call-at-a-time lock counts too."""
        if self._closed.is_set():
            return StationReply(Outcome.CONNECTION_LOST, description="connection closed")
        payload = self.table.to_call(request)
        unique_id = str(uuid.uuid4())
        call = self.call(payload, suppress=False, unique_id=unique_id)  # type: ignore[attr-defined]
        call_task = asyncio.create_task(call)
        closed_task = asyncio.create_task(self._closed.wait())
        try:
            done, _ = await asyncio.wait(
                {call_task, closed_task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            closed_task.cancel()
        if call_task not in done:
            call_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await call_task
            if closed_task in done:
                return StationReply(
                    Outcome.CONNECTION_LOST, description="connection lost", unique_id=unique_id
                )
            return StationReply(
                Outcome.TIMEOUT, description=f"no answer within {timeout:.1f}s", unique_id=unique_id
            )
        try:
            result = call_task.result()
        except OCPPError as error:
            return StationReply(
                Outcome.CALL_ERROR,
                error_code=error.code,
                description=str(error.description),
                unique_id=unique_id,
            )
        reply: StationReply = self.table.to_reply(result, unique_id)
        return reply
