"""X-Request-ID / X-Correlation-ID on every OCPI answer: echoed, or made up when absent."""

from __future__ import annotations

import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID = "x-request-id"
CORRELATION_ID = "x-correlation-id"


class OcpiRequestIds:
    """Pure ASGI (not BaseHTTPMiddleware): it sits on the command hot path."""

    def __init__(self, app: ASGIApp, prefix: str = "/ocpi") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        request_headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        request_id = request_headers.get(REQUEST_ID) or str(uuid.uuid4())
        correlation_id = request_headers.get(CORRELATION_ID) or str(uuid.uuid4())
        scope.setdefault("state", {})["correlation_id"] = correlation_id

        async def send_with_ids(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
                headers["X-Correlation-ID"] = correlation_id
            await send(message)

        await self.app(scope, receive, send_with_ids)
