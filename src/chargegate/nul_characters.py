"""NUL characters in a request's path or query are refused before any route sees them.

No identifier of OCPI, OCPP or the operator API contains one, and PostgreSQL text cannot hold or
compare one: every path or query parameter that reaches a query would otherwise fail there, as a
500. One check at the edge covers them all; JSON bodies are checked where they are parsed
(`json_text.loads_document`, the request models' patterns)."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from chargegate.ocpi import status
from chargegate.ocpi.envelope import OcpiError, error_response

_MESSAGE = "NUL characters are not allowed in the path or query"


class RefuseNulCharacters:
    """Pure ASGI: HTTP 400 (OCPI 2001 under /ocpi) for %00 in the path or the query string."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"")
        ):
            if scope["path"].startswith("/ocpi"):
                response = error_response(OcpiError(status.INVALID_PARAMETERS, _MESSAGE, 400))
            else:
                response = JSONResponse({"detail": _MESSAGE}, status_code=400)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
