"""The request body size limit, enforced as the body arrives.

A declared Content-Length over the limit is refused before any of the body is read; a chunked
body is counted chunk by chunk (uvicorn hands over at most 64 KiB at a time and stops reading
the socket until the app asks for more), and refused the moment it passes the limit, so no
more than the limit is ever held. The answer is HTTP 413 with `Connection: close` (the rest of
the body is not read): under /ocpi an OCPI envelope with status_code 2000, elsewhere the
operator API's `{"detail": …}`. Starlette has no body limit of its own and uvicorn none for
HTTP bodies, hence this pure ASGI middleware (no BaseHTTPMiddleware: it sits on the command
hot path)."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chargegate.ocpi import status
from chargegate.ocpi.envelope import OcpiError, error_response

_CLOSE = {"Connection": "close"}


class BodyTooLarge(OcpiError):
    """Raised into the app by `receive` when the body passes the limit; an OcpiError so the
    command lane and the OCPI routes answer it without a traceback. The middleware answers
    the client itself whatever the app makes of it."""

    def __init__(self, limit: int) -> None:
        super().__init__(status.CLIENT_ERROR, _message(limit), http_status=413, headers=_CLOSE)


def _message(limit: int) -> str:
    return f"request body larger than {limit} bytes (the gateway's max_body_bytes)"


def too_large_response(path: str, limit: int) -> Response:
    if path.startswith("/ocpi"):
        return error_response(BodyTooLarge(limit))
    return JSONResponse({"detail": _message(limit)}, status_code=413, headers=_CLOSE)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.limit = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit
        for name, value in scope["headers"]:
            if name == b"content-length":
                if value.isdigit() and int(value) > limit:
                    await too_large_response(scope["path"], limit)(scope, receive, send)
                    return
                if value.isdigit():
                    # The server reads no more than the length declared (HTTP/1.1 framing), so
                    # only a chunked body needs counting: the common case, every OCPI command,
                    # passes without the wrappers below (they cost the hot path ~3 %).
                    await self.app(scope, receive, send)
                    return
                break
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge(limit)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # whatever the app answers to BodyTooLarge; ours follows
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded:  # what the app made of BodyTooLarge is of no interest
                raise
        if exceeded and not started:
            await too_large_response(scope["path"], limit)(scope, receive, send)
