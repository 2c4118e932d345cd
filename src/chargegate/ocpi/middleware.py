"""X-Request-ID / X-Correlation-ID on every OCPI answer: echoed, or made up when absent."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chargegate.domain.ids import new_id

REQUEST_ID = b"x-request-id"
CORRELATION_ID = b"x-correlation-id"
_OURS = (REQUEST_ID, CORRELATION_ID)


def _usable(value: bytes) -> bool:
    """An id we can echo, log and store with a command (64 characters): printable ASCII. Any
    other is replaced by one we make up, as if absent."""
    return 0 < len(value) <= 64 and all(0x20 < b < 0x7F for b in value)


class OcpiRequestIds:
    """Pure ASGI (not BaseHTTPMiddleware), on raw header pairs: it sits on the command hot
    path (docs/performance.md#command-lane)."""

    def __init__(self, app: ASGIApp, prefix: str = "/ocpi") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        request_id = correlation_id = b""
        for name, value in scope["headers"]:
            lowered = name.lower()  # ASGI servers lower-case names; the spec does not promise it
            if lowered == REQUEST_ID:
                request_id = value
            elif lowered == CORRELATION_ID:
                correlation_id = value
        request_id = request_id if _usable(request_id) else new_id().encode()
        correlation_id = correlation_id if _usable(correlation_id) else new_id().encode()
        scope.setdefault("state", {})["correlation_id"] = correlation_id.decode("latin-1")

        async def send_with_ids(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *(h for h in message.get("headers", ()) if h[0].lower() not in _OURS),
                    (REQUEST_ID, request_id),
                    (CORRELATION_ID, correlation_id),
                ]
            await send(message)

        await self.app(scope, receive, send_with_ids)
