"""Composition root: builds the ASGI app from settings and runs its background workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import WebSocketRoute

from chargegate import __version__
from chargegate.api import communication_log as api_communication_log
from chargegate.api import emsp as api_emsp
from chargegate.api import emsp_stream as api_emsp_stream
from chargegate.api import remote_commands as api_remote_commands
from chargegate.api import stations as api_stations
from chargegate.api.errors import remote_command_error
from chargegate.cluster.cap import LocalCap
from chargegate.cluster.local import LocalStationRouter
from chargegate.cluster.redis_cap import RedisCap
from chargegate.cluster.redis_router import RedisStationRouter
from chargegate.delivery.client import PeerClient
from chargegate.delivery.worker import DeliveryWorker
from chargegate.domain.emsp_commands import EmspRequestError
from chargegate.emsp_side import EmspSide
from chargegate.gateway_app import GatewayApp
from chargegate.ocpi import cdrs as ocpi_cdrs
from chargegate.ocpi import commands as ocpi_commands
from chargegate.ocpi import credentials as ocpi_credentials
from chargegate.ocpi import locations as ocpi_locations
from chargegate.ocpi import sessions as ocpi_sessions
from chargegate.ocpi import status
from chargegate.ocpi import versions as ocpi_versions
from chargegate.ocpi.emsp.routes import router as ocpi_emsp_router
from chargegate.ocpi.envelope import (
    OcpiError,
    error_response,
    internal_error_response,
    validation_message,
)
from chargegate.ocpi.wire import OcpiWire
from chargegate.ocpp.endpoint import ocpp_websocket
from chargegate.service.commands import CommandService
from chargegate.service.operator_keys import OperatorKeys
from chargegate.service.parties import PartyService
from chargegate.service.remote_commands import RemoteCommandError, RemoteCommandService
from chargegate.service.station_events import StationEvents
from chargegate.settings import Settings
from chargegate.store import db
from chargegate.store.comm_log import PRUNE_EVERY, CommunicationLog
from chargegate.store.command_store import SqlCommandStore
from chargegate.store.health import readiness
from chargegate.store.operator_key_store import SqlOperatorKeyStore
from chargegate.store.party_store import SqlPartyStore
from chargegate.store.remote_request_store import SqlRemoteRequestStore
from chargegate.store.station_event_store import SqlStationEventStore
from chargegate.store.units import Units

log = logging.getLogger(__name__)


async def _every(seconds: float, job: Callable[[], Awaitable[object]], name: str) -> None:
    while True:
        try:
            await job()
        except Exception:
            log.exception("%s failed", name)
        await asyncio.sleep(seconds)


def create_app(
    settings: Settings | None = None, *, migrate: bool = True, command_lane: bool = True
) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if migrate:
            await db.upgrade_async(settings.database_url)
        engine = db.make_engine(
            settings.database_url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        )
        sessions = db.make_sessionmaker(engine)
        http = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=100)
        )
        redis: Redis | None = None
        router: LocalStationRouter | RedisStationRouter
        cap: LocalCap | RedisCap
        if settings.redis_url:
            # A pooled connection may have died with a Redis restart: retry once on a fresh one
            # before reporting the cluster link as failed.
            redis = Redis.from_url(
                settings.redis_url,
                health_check_interval=10,
                retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
                retry_on_error=[RedisConnectionError, RedisTimeoutError],
            )
            router = RedisStationRouter(
                redis,
                settings.node_id,
                prefix=settings.redis_prefix,
                entry_ttl=settings.registry_ttl,
                refresh_interval=settings.registry_refresh,
            )
            await router.start()
            cap = RedisCap(
                redis,
                settings.operator_parallel_cap,
                hold_seconds=settings.operator_timeout * 2 + 30,
                prefix=settings.redis_prefix,
            )
        else:
            router = LocalStationRouter()
            cap = LocalCap(settings.operator_parallel_cap)
        wire = OcpiWire(settings)
        units = Units(engine)
        comm_log = CommunicationLog(units, retention_days=settings.comm_log_retention_days)
        peer_client = PeerClient()
        delivery = DeliveryWorker(settings, sessions, peer_client, units)
        parties = PartyService(SqlPartyStore(sessions))
        commands = CommandService(
            settings,
            SqlCommandStore(units, wire),
            router,
            wire,
            delivery.notify,
            parties.cache,
            delivery.deliver_now,
        )
        station_events = StationEvents(
            SqlStationEventStore(
                sessions,
                units,
                wire,
                session_link_window=settings.session_link_window,
                result_horizon=settings.delivery_result_horizon,
            ),
            delivery.notify,
        )
        remote_commands = RemoteCommandService(
            settings,
            SqlRemoteRequestStore(sessions),
            router,
            cap,
            on_lock=station_events.cancel_reservations_at,
        )
        state = app.state
        state.settings, state.sessions, state.http, state.router = settings, sessions, http, router
        state.comm_log, state.delivery, state.commands = comm_log, delivery, commands
        state.redis, state.engine = redis, engine
        state.parties = parties
        state.operator_keys = OperatorKeys(SqlOperatorKeyStore(sessions))
        state.remote_commands = remote_commands
        state.station_events = station_events
        state.emsp = EmspSide(settings, sessions, http)
        comm_log.start()
        delivery.start()
        state.emsp.start()
        sweep = settings.sweep_interval
        jobs = [
            asyncio.create_task(_every(interval, job, name), name=name)
            for interval, job, name in (
                (sweep, commands.resolve_expired, "timeout sweep"),
                (sweep, remote_commands.tick, "remote start attempts"),
                (sweep, station_events.expire_reservations, "reservation expiry"),
                (PRUNE_EVERY, comm_log.prune_expired, "communication log retention"),
            )
        ]
        log.info("chargegate %s ready on %s", __version__, settings.public_url)
        try:
            yield
        finally:
            for job in jobs:
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job
            await commands.stop()
            await state.emsp.stop()
            await remote_commands.stop()
            await delivery.stop()
            await comm_log.stop()
            if isinstance(router, RedisStationRouter):
                await router.stop()
            if redis is not None:
                await redis.aclose()
            await http.aclose()
            await peer_client.aclose()
            await units.close()
            await engine.dispose()

    app = GatewayApp(
        command_lane=command_lane,
        title="chargegate",
        version=__version__,
        summary="OCPI remote commands carried to OCPP charge points, results carried back.",
        lifespan=lifespan,
    )

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
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return internal_error_response()

    app.include_router(ocpi_versions.router)
    app.include_router(ocpi_credentials.router)
    app.include_router(ocpi_locations.router)
    app.include_router(ocpi_sessions.router)
    app.include_router(ocpi_cdrs.router)
    app.include_router(ocpi_commands.router)
    app.include_router(api_remote_commands.router)
    app.include_router(api_stations.router)
    app.include_router(api_communication_log.router)
    app.include_router(ocpi_emsp_router)
    app.include_router(api_emsp.router)
    app.include_router(api_emsp_stream.router)
    app.router.routes.append(WebSocketRoute("/ocpp/{station_id}", ocpp_websocket))

    @app.get("/healthz", tags=["health"], summary="Process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Database and Redis are reachable")
    async def readyz(request: Request) -> Response:
        checks = await readiness(request.app.state.engine, request.app.state.redis)
        ready = all(v == "ok" or v == "not configured" for v in checks.values())
        body = {"status": "ready" if ready else "not ready", "node": settings.node_id, **checks}
        return JSONResponse(body, status_code=200 if ready else 503)

    return app
