"""RemoteCommandError → an HTTP answer a person (or a support tool) can act on."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from chargegate.service.remote_commands import RemoteCommandError

STATUS_OF_KIND = {
    "not_found": 404,
    "invalid": 422,
    "offline": 409,
    "locked": 409,
    "conflict": 409,
    "cap": 429,
    "timeout": 504,
    "station_error": 502,
    "unavailable": 503,
}


async def remote_command_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RemoteCommandError)
    body: dict[str, object] = {"error": exc.kind, "message": exc.message}
    headers: dict[str, str] = {}
    if exc.record_id is not None:
        body["id"] = exc.record_id
        body["record"] = f"/remote_commands/requests/{exc.record_id}"
    if exc.kind == "cap":
        headers["Retry-After"] = "1"
    return JSONResponse(body, status_code=STATUS_OF_KIND.get(exc.kind, 400), headers=headers)
