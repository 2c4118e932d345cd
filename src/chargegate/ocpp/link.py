"""What every OCPP handler does the same way, whatever its version: serve the socket, make one
call at a time with a deadline, and turn the answer into a version-free reply.

Calls are framed and validated with the `ocpp` library's own functions, their payloads converted
between its dataclasses and the wire as it converts them (ocpp/payload_case.py), but not sent
through its `ChargePoint.call`: that one waits on a shared queue with `wait_for` and knows
neither our deadline (which also covers waiting for the one-call-at-a-time lock) nor the
connection's end. Here each call awaits one future, keyed by its unique id, under one
`asyncio.timeout` (docs/performance.md#ocpp-calls)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from decimal import Decimal
from types import ModuleType
from typing import Any

from ocpp.exceptions import (
    NotImplementedError,
    NotSupportedError,
    OCPPError,
    PropertyConstraintViolationError,
    UnknownCallErrorCodeError,
)
from ocpp.messages import Call, MessageType, validate_payload

from chargegate import json_text
from chargegate.domain.ids import new_id
from chargegate.domain.station_calls import Outcome, StationReply, StationRequest
from chargegate.service.station_events import StationEvents

from .connection import LoggedConnection
from .frames import RefusedFrame, call_error_text, in_dialect, read_frame
from .payload_case import from_wire, to_wire

log = logging.getLogger(__name__)


def call_frame(call: Call) -> str:
    """The CALL's text, the JSON `Call.to_json` writes (json_text writes it faster)."""
    frame = [call.message_type_id, call.unique_id, call.action, call.payload]
    return json_text.dumps(frame, _one_decimal_digit)


def _one_decimal_digit(value: Any) -> Any:
    # As the library's encoder: OCPP 1.6 decimals (a charging limit) carry one fraction digit.
    if isinstance(value, Decimal):
        return float("%.1f" % value)  # noqa: UP031 (the library's own rounding, via float)
    return json_text.refuse(value)


class ConnectionLost(Exception):
    pass


class Replies:
    """Takes the place of the library's response queue: its read loop hands every CALLRESULT
    and CALLERROR to `put_nowait`, and each goes to the call waiting for its unique id."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[Any]] = {}
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def expect(self, unique_id: str) -> asyncio.Future[Any]:
        if self._closed:
            raise ConnectionLost("connection closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[unique_id] = future
        return future

    def forget(self, unique_id: str) -> None:
        self._waiting.pop(unique_id, None)

    def put_nowait(self, message: Any) -> None:
        future = self._waiting.pop(message.unique_id, None)
        if future is None or future.done():
            # A late answer to a call that timed out, or one we never made.
            log.warning("ignoring an answer to no open call: %s", message)
            return
        future.set_result(message)

    def close(self) -> None:
        self._closed = True
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(ConnectionLost("connection lost"))


class StationLinkMixin:
    """Mixed into an `ocpp` ChargePoint subclass; `table` is that version's translation table
    (a module with `to_call(request)` and `to_reply(result, unique_id)`)."""

    table: ModuleType
    # The actions this OCPP version defines: one without a handler here is NotSupported, any
    # other NotImplemented (OCPP-J 1.6 §4.2.3, 2.0.1 part 4 §4.3).
    known_actions: frozenset[str]
    route_map: dict[str, Any]
    id: str
    _connection: Any
    _call_lock: asyncio.Lock
    _call_result: ModuleType
    _ocpp_version: str

    def __init__(
        self,
        station_id: str,
        connection: LoggedConnection,
        events: StationEvents,
        heartbeat_interval: int,
        max_connector_id: int = 64,
    ) -> None:
        """`max_connector_id`: the largest connector or EVSE id this station may report
        (settings.ocpp_max_connectors)."""
        # The library's own response timeout is not used: each call carries its own deadline.
        super().__init__(station_id, connection, response_timeout=24 * 3600)  # type: ignore[call-arg]
        self._events = events
        self._heartbeat_interval = heartbeat_interval
        self._max_connector_id = max_connector_id
        self._replies = Replies()
        self._response_queue = self._replies  # where the library's read loop puts answers

    async def serve(self) -> None:
        try:
            await self.start()  # type: ignore[attr-defined]
        finally:
            self._replies.close()

    async def route_message(self, raw_msg: str) -> None:
        """The library's routing, with every broken frame answered as OCPP-J says
        (ocpp/frames.py) instead of logged and dropped, and unknown actions answered with the
        spec's codes."""
        try:
            message = read_frame(raw_msg)
            if isinstance(message, Call):
                await self._answer_call(message)
            else:
                self._replies.put_nowait(message)
        except RefusedFrame as refused:
            error = in_dialect(refused.error, self._ocpp_version)
            log.warning("station %s: frame refused: %s %s", self.id, error.code, error.description)
            if refused.answer:
                await self._send(call_error_text(refused.unique_id, error))  # type: ignore[attr-defined]

    async def _answer_call(self, call: Call) -> None:
        if call.action not in self.route_map:
            known = call.action in self.known_actions
            error_class = NotSupportedError if known else NotImplementedError
            description = (
                f"{call.action} is not supported by this CSMS"
                if known
                else f"{call.action} is not an OCPP {self._ocpp_version} action"
            )
            raise RefusedFrame(call.unique_id, error_class(description=description))
        try:
            # The library validates the payload, calls the handler and answers (a handler's
            # OCPPError becomes its CALLERROR there); what it raises itself is the payload's fault.
            await self._handle_call(call)  # type: ignore[attr-defined]
        except OCPPError as error:
            raise RefusedFrame(call.unique_id, error) from None

    async def disconnect(self, reason: str) -> None:
        self._replies.close()
        with contextlib.suppress(Exception):
            await self._connection.close(code=1000, reason=reason)

    async def execute(self, request: StationRequest, timeout: float) -> StationReply:
        """Send one call; waiting for the station's one-call-at-a-time lock counts too."""
        if self._replies.closed:
            return StationReply(Outcome.CONNECTION_LOST, description="connection closed")
        payload = self.table.to_call(request)
        unique_id = new_id()
        # Framed and validated as the library's own `call` does (ocpp/payload_case.py).
        call = Call(unique_id=unique_id, action=type(payload).__name__, payload=to_wire(payload))
        try:
            await validate_payload(call, self._ocpp_version)
            async with asyncio.timeout(timeout):
                async with self._call_lock:
                    answered = self._replies.expect(unique_id)
                    try:
                        await self._send_call(call_frame(call))
                        response = await answered
                    finally:
                        self._replies.forget(unique_id)
            if response.message_type_id == MessageType.CallError:
                raise _station_error(response)
            response.action = call.action
            await validate_payload(response, self._ocpp_version)
        except TimeoutError:
            return StationReply(
                Outcome.TIMEOUT, description=f"no answer within {timeout:.1f}s", unique_id=unique_id
            )
        except ConnectionLost as lost:
            return StationReply(Outcome.CONNECTION_LOST, description=str(lost), unique_id=unique_id)
        except OCPPError as error:
            return StationReply(
                Outcome.CALL_ERROR,
                error_code=error.code,
                description=str(error.description),
                unique_id=unique_id,
            )
        result_class = getattr(self._call_result, call.action)
        result = result_class(**from_wire(response.payload))
        reply: StationReply = self.table.to_reply(result, unique_id)
        return reply

    def check_connector(self, connector_id: int, lowest: int = 0) -> int:
        """`connector_id` if this station may have it: 0 (the station itself, where the message
        allows it) up to settings.ocpp_max_connectors; otherwise the CALLERROR, and nothing
        stored."""
        if not lowest <= connector_id <= self._max_connector_id:
            raise PropertyConstraintViolationError(
                description=(
                    f"connector or EVSE id {connector_id} is outside "
                    f"{lowest}..{self._max_connector_id}"
                )
            )
        return connector_id

    async def _send_call(self, frame: str) -> None:
        try:
            await self._send(frame)  # type: ignore[attr-defined]
        except Exception as exc:
            raise ConnectionLost(f"could not send the call: {exc}") from exc


def _station_error(response: Any) -> OCPPError:
    """The station's CALLERROR as an OCPPError, also when its code is none OCPP-J defines."""
    try:
        return response.to_exception()
    except UnknownCallErrorCodeError:
        error = OCPPError(description=str(response.error_description))
        error.code = str(response.error_code)
        return error
