"""Adapts a Starlette WebSocket to the recv/send interface the `ocpp` library expects,
writing every frame to the communication log on the way, and holding the station to the frame
size and rate limits (docs/security.md#ocpp-j-robustness)."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass

from starlette.websockets import WebSocket, WebSocketDisconnect

from chargegate.settings import Settings
from chargegate.store.comm_log import CommunicationLog

log = logging.getLogger(__name__)

# The unique id at the start of a CALLRESULT or CALLERROR.
_REPLY_START = re.compile(r'\s*\[\s*[34]\s*,\s*"([^"\\]{1,36})"')

# RFC 6455 close codes.
UNSUPPORTED_DATA = 1003
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009


@dataclass(frozen=True, slots=True)
class FrameLimits:
    max_frame_bytes: int = 262144
    frames_per_second: float = 20.0
    frame_burst: int = 200
    throttle_close_seconds: float = 300.0

    @classmethod
    def of(cls, settings: Settings) -> FrameLimits:
        return cls(
            settings.ocpp_max_frame_bytes,
            settings.ocpp_max_frames_per_second,
            settings.ocpp_frame_burst,
            settings.ocpp_throttle_close_seconds,
        )


class FrameRate:
    """A token bucket: `burst` frames at once, `rate` a second after that. A station over the
    rate is slowed (its next frame is read only when a token is there, so TCP holds the rest);
    one that stays over it for `close_after` seconds is abusing the link."""

    def __init__(self, rate: float, burst: int, close_after: float) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._close_after = close_after
        self._last = time.monotonic()
        self._throttled_since: float | None = None

    async def admit(self) -> bool:
        """Wait for this frame's token; False once the station has been throttled too long."""
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            self._throttled_since = None
            return True
        if self._throttled_since is None:
            self._throttled_since = now
        elif now - self._throttled_since > self._close_after:
            return False
        await asyncio.sleep((1 - self._tokens) / self._rate)
        self._tokens = 0.0
        self._last = time.monotonic()
        return True


class LoggedConnection:
    def __init__(
        self,
        websocket: WebSocket,
        station_id: str,
        comm_log: CommunicationLog,
        limits: FrameLimits | None = None,
    ) -> None:
        self._ws = websocket
        self._station_id = station_id
        self._log = comm_log
        self._action_of_call: dict[str, str] = {}
        self._limits = limits or FrameLimits()
        self._last_heard = time.monotonic()
        self._rate = FrameRate(
            self._limits.frames_per_second,
            self._limits.frame_burst,
            self._limits.throttle_close_seconds,
        )

    def last_heard(self) -> float:
        """`time.monotonic()` of the last frame the station sent (or of the connection)."""
        return self._last_heard

    async def recv(self) -> str:
        message = await self._ws.receive()
        self._last_heard = time.monotonic()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
        raw = message.get("text")
        if raw is None:
            await self._refuse(UNSUPPORTED_DATA, "OCPP-J frames are text; binary frames refused")
        elif self._too_big(raw):
            await self._refuse(
                MESSAGE_TOO_BIG, f"frame larger than {self._limits.max_frame_bytes} bytes"
            )
        elif not self._answers_our_call(raw) and not await self._rate.admit():
            await self._refuse(
                POLICY_VIOLATION,
                f"more than {self._limits.frames_per_second:g} frames a second for "
                f"{self._limits.throttle_close_seconds:g} s",
            )
        assert raw is not None
        self._log.record(self._station_id, "IN", raw, self._action_of_call)
        return raw

    def _answers_our_call(self, raw: str) -> bool:
        """A CALLRESULT or CALLERROR to a call still open: we set that pace (one call in flight
        per station), so it does not count against the station's rate."""
        reply = _REPLY_START.match(raw)
        return reply is not None and reply.group(1) in self._action_of_call

    def _too_big(self, raw: str) -> bool:
        limit = self._limits.max_frame_bytes
        # Characters are at most 4 UTF-8 bytes: only a frame near the limit is encoded.
        return len(raw) > limit or (len(raw) * 4 > limit and len(raw.encode()) > limit)

    async def _refuse(self, code: int, reason: str) -> None:
        """Close with `code` and end the read loop as a disconnect does."""
        log.warning("station %s: closing with %d: %s", self._station_id, code, reason)
        await self.close(code, reason)
        raise WebSocketDisconnect(code, reason)

    async def send(self, raw: str) -> None:
        self._log.record(self._station_id, "OUT", raw, self._action_of_call)
        await self._ws.send_text(raw)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._ws.close(code=code, reason=reason)
