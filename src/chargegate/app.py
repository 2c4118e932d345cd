"""The ASGI app: routes, exception handlers and health checks (bootstrap.py builds what they
call)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import WebSocketRoute

from chargegate import __version__, bootstrap, redaction
from chargegate.api import communication_log as api_communication_log
from chargegate.api import dead_letters as api_dead_letters
from chargegate.api import emsp as api_emsp
from chargegate.api import emsp_stream as api_emsp_stream
from chargegate.api import locations as api_locations
from chargegate.api import remote_commands as api_remote_commands
from chargegate.api import station_admission as api_station_admission
from chargegate.api import stations as api_stations
from chargegate.api.errors import remote_command_error
from chargegate.domain.emsp_commands import EmspRequestError
from chargegate.gateway import gateway_of
from chargegate.limits.body import BodyLimit
from chargegate.nul_characters import RefuseNulCharacters
from chargegate.ocpi import cdrs as ocpi_cdrs
from chargegate.ocpi import commands as ocpi_commands
from chargegate.ocpi import credentials as ocpi_credentials
from chargegate.ocpi import locations as ocpi_locations
from chargegate.ocpi import sessions as ocpi_sessions
from chargegate.ocpi import status
from chargegate.ocpi import versions as ocpi_versions
from chargegate.ocpi.command_lane import LanedApp
from chargegate.ocpi.emsp.routes import router as ocpi_emsp_router
from chargegate.ocpi.envelope import (
    OcpiError,
    error_response,
    internal_error_response,
    validation_message,
)
from chargegate.ocpp.endpoint import ocpp_websocket
from chargegate.service.remote_commands import RemoteCommandError
from chargegate.settings import Settings

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None, *, migrate: bool = True, command_lane: bool = True
) -> FastAPI:
    """The ASGI app: OCPI (CPO and eMSP roles), the operator API, the OCPP WebSocket and health
    checks on one port. The gateway behind them is built and started with the app's lifespan."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gateway = bootstrap.build(settings, migrate=migrate)
        await gateway.start()
        app.state.gateway = gateway
        log.info("chargegate %s ready on %s", __version__, settings.public_url)
        try:
            yield
        finally:
            await gateway.stop()

    app = LanedApp(
        command_lane=command_lane,
        title="chargegate",
        version=__version__,
        summary="OCPI remote commands carried to OCPP charge points, results carried back.",
        lifespan=lifespan,
    )

    # Outermost: a body over the limit is refused before anything else reads it.
    app.front = BodyLimit(app.front, settings.max_body_bytes)

    @app.exception_handler(OcpiError)
    async def _ocpi_error(request: Request, exc: OcpiError) -> Response:
        return error_response(exc)

    # Under /ocpi every answer is an OCPI envelope, also for paths, methods and parameters the
    # framework itself refuses.
    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not request.url.path.startswith("/ocpi"):
            return await http_exception_handler(request, exc)
        code = status.CLIENT_ERROR if exc.status_code < 500 else status.SERVER_ERROR
        return error_response(OcpiError(code, str(exc.detail), exc.status_code))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        if not request.url.path.startswith("/ocpi"):
            return await request_validation_exception_handler(request, exc)
        return error_response(OcpiError(status.INVALID_PARAMETERS, validation_message(exc)))

    app.add_exception_handler(RemoteCommandError, remote_command_error)
    app.add_exception_handler(EmspRequestError, api_emsp.emsp_error)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, redaction.path(request.url.path))
        return internal_error_response()

    app.include_router(ocpi_versions.router)
    app.include_router(ocpi_credentials.router)
    app.include_router(ocpi_locations.router)
    app.include_router(ocpi_sessions.router)
    app.include_router(ocpi_cdrs.router)
    app.include_router(ocpi_commands.router)
    app.include_router(api_remote_commands.router)
    app.include_router(api_stations.router)
    app.include_router(api_locations.router)
    app.include_router(api_station_admission.router)
    app.include_router(api_communication_log.router)
    app.include_router(api_dead_letters.router)
    app.include_router(ocpi_emsp_router)
    app.include_router(api_emsp.router)
    app.include_router(api_emsp_stream.router)
    app.router.routes.append(WebSocketRoute("/ocpp/{station_id}", ocpp_websocket))
    app.add_middleware(RefuseNulCharacters)

    @app.get("/healthz", tags=["health"], summary="Process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Database and Redis are reachable")
    async def readyz(request: Request) -> Response:
        checks = await gateway_of(request).readiness()
        ready = all(v == "ok" or v == "not configured" for v in checks.values())
        body = {"status": "ready" if ready else "not ready", "node": settings.node_id, **checks}
        return JSONResponse(body, status_code=200 if ready else 503)

    return app
