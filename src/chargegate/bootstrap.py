"""The composition root: builds every component of a gateway from its settings and says how
they start and stop. The only module that knows the implementations behind the service
layer's ports (store, cluster, delivery, the OCPI wire)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from chargegate.cluster.cap import LocalCap
from chargegate.cluster.local import LocalStationRouter
from chargegate.cluster.redis_cap import RedisCap
from chargegate.cluster.redis_router import RedisStationRouter
from chargegate.delivery.client import PeerClient
from chargegate.delivery.webhooks import WebhookWorker
from chargegate.delivery.worker import DeliveryWorker
from chargegate.domain.request_rates import PeerRates
from chargegate.egress import Egress, http_client
from chargegate.gateway import EmspServices, Gateway
from chargegate.ocpi.emsp.registration import OcpiHandshake
from chargegate.ocpi.emsp.sender import CommandSender
from chargegate.ocpi.wire import OcpiWire
from chargegate.service.commands import CommandService
from chargegate.service.emsp.commands import EmspCommands
from chargegate.service.emsp.events import EmspEvents
from chargegate.service.emsp.peers import EmspPeers
from chargegate.service.emsp.receipts import EmspReceipts
from chargegate.service.emsp.webhooks import WebhookSubscriptions
from chargegate.service.locations import Locations
from chargegate.service.operator_keys import OperatorKeys
from chargegate.service.parties import PartyService
from chargegate.service.remote_commands import RemoteCommandService
from chargegate.service.station_admission import StationAdmission
from chargegate.service.station_events import StationEvents
from chargegate.service.stations import StationMapping
from chargegate.settings import Settings
from chargegate.store import db
from chargegate.store.comm_log import PRUNE_EVERY, CommunicationLog
from chargegate.store.command_store import SqlCommandStore
from chargegate.store.delivery_sql import DeadLetters
from chargegate.store.emsp_commands_sql import EmspCommandsSql
from chargegate.store.emsp_peers_sql import EmspPeersSql
from chargegate.store.emsp_webhooks_sql import EmspWebhooksSql
from chargegate.store.location_store import SqlLocationStore
from chargegate.store.operator_key_store import SqlOperatorKeyStore
from chargegate.store.party_store import SqlPartyStore
from chargegate.store.remote_request_store import SqlRemoteRequestStore
from chargegate.store.secrets import reseal_all, secret_box
from chargegate.store.station_admission_store import SqlStationAdmissionStore
from chargegate.store.station_event_store import SqlStationEventStore
from chargegate.store.station_mapping_store import SqlStationMappingStore
from chargegate.store.units import Units

log = logging.getLogger(__name__)


def build(settings: Settings, *, migrate: bool = True) -> Gateway:
    """Every component, wired and not yet started (nothing is connected before `start`)."""
    box = secret_box(settings)
    engine = db.make_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        secrets=box,
    )
    sessions = db.make_sessionmaker(engine)
    units = Units(engine)
    egress = Egress(settings.outbound_policy)
    http = http_client(egress, httpx.Limits(max_connections=200, max_keepalive_connections=100))
    redis, router, cap = _cluster(settings)
    wire = OcpiWire(settings)
    comm_log = CommunicationLog(
        units,
        retention_days=settings.comm_log_retention_days,
        station_bytes_per_minute=settings.comm_log_station_bytes_per_minute,
    )
    peer_client = PeerClient(
        egress,
        max_connections=settings.delivery_peer_connections,
        max_keepalive=settings.delivery_peer_keepalive,
    )
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
    admission = StationAdmission(
        SqlStationAdmissionStore(sessions),
        settings.ocpp_admission,
        router,
        router.disconnect,
        call_timeout=settings.operator_timeout,
    )
    remote_commands = RemoteCommandService(
        settings,
        SqlRemoteRequestStore(sessions),
        router,
        cap,
        on_lock=station_events.cancel_reservations_at,
        on_configuration_taken=admission.configuration_accepted,
    )
    emsp_events = EmspEvents(EmspCommandsSql(sessions, postgres=not settings.is_sqlite))
    emsp_peers = EmspPeers(settings, EmspPeersSql(sessions), OcpiHandshake(http, settings))
    emsp_commands = EmspCommands(
        settings, emsp_events, emsp_peers, CommandSender(http, settings.emsp_http_timeout)
    )
    webhook_store = EmspWebhooksSql(sessions)
    emsp = EmspServices(
        events=emsp_events,
        peers=emsp_peers,
        commands=emsp_commands,
        receipts=EmspReceipts(settings, emsp_events, emsp_commands),
        subscriptions=WebhookSubscriptions(webhook_store, emsp_events),
    )
    webhooks = WebhookWorker(settings, webhook_store, http, emsp_events)
    gateway = Gateway(
        settings=settings,
        engine=engine,
        sessions=sessions,
        http=http,
        egress=egress,
        redis=redis,
        router=router,
        comm_log=comm_log,
        parties=parties,
        operator_keys=OperatorKeys(SqlOperatorKeyStore(sessions)),
        commands=commands,
        remote_commands=remote_commands,
        station_events=station_events,
        admission=admission,
        emsp=emsp,
        locations=Locations(SqlLocationStore(sessions)),
        rates=PeerRates(settings.rate_limit_per_second, settings.rate_limit_burst),
    )

    sweep = settings.sweep_interval
    periodic = Periodic(
        (sweep, commands.resolve_expired, "timeout sweep"),
        (sweep, remote_commands.tick, "remote start attempts"),
        (sweep, station_events.expire_reservations, "reservation expiry"),
        (sweep, emsp_commands.resolve_expired, "eMSP command expiry sweep"),
        (PRUNE_EVERY, comm_log.prune_expired, "communication log retention"),
    )

    async def upgrade() -> None:
        if migrate:
            await db.upgrade_async(settings.database_url)
        await reseal_all(sessions, box)

    async def start_workers() -> None:
        comm_log.start()
        delivery.start()
        webhooks.start()

    gateway.starts.append(upgrade)
    if settings.ocpp_admission == "open":
        gateway.starts.append(_warn_open_admission)
    if isinstance(router, RedisStationRouter):
        gateway.starts.append(router.start)
    gateway.starts += [start_workers, periodic.start]
    gateway.stops += [
        periodic.stop,
        commands.stop,
        webhooks.stop,
        remote_commands.stop,
        delivery.stop,
        comm_log.stop,
    ]
    if isinstance(router, RedisStationRouter):
        gateway.stops.append(router.stop)
    if redis is not None:
        gateway.stops.append(redis.aclose)
    gateway.stops += [http.aclose, peer_client.aclose, units.close, engine.dispose]
    return gateway


async def _warn_open_admission() -> None:
    log.warning(
        "CHARGEGATE_OCPP_ADMISSION=open: any station is admitted and published; for"
        " development only (docs/security.md#development-mode)"
    )


def _cluster(
    settings: Settings,
) -> tuple[Redis | None, LocalStationRouter | RedisStationRouter, LocalCap | RedisCap]:
    """One node in-process, or a cluster through Redis when `redis_url` is set."""
    if not settings.redis_url:
        return None, LocalStationRouter(), LocalCap(settings.operator_parallel_cap)
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
    cap = RedisCap(
        redis,
        settings.operator_parallel_cap,
        hold_seconds=settings.operator_timeout * 2 + 30,
        prefix=settings.redis_prefix,
    )
    return redis, router, cap


class Periodic:
    """Jobs run every few seconds for the gateway's lifetime (sweeps, retention); a failed
    run is logged and the job runs again next time."""

    def __init__(self, *jobs: tuple[float, Callable[[], Awaitable[object]], str]) -> None:
        self._jobs = jobs
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._every(interval, job, name), name=name)
            for interval, job, name in self._jobs
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @staticmethod
    async def _every(seconds: float, job: Callable[[], Awaitable[object]], name: str) -> None:
        while True:
            try:
                await job()
            except Exception:
                log.exception("%s failed", name)
            await asyncio.sleep(seconds)


@dataclass(eq=False, slots=True)
class AdminTools:
    """The use cases the command line runs against the database, gateway running or not."""

    parties: PartyService
    operator_keys: OperatorKeys
    stations: StationMapping
    emsp_peers: EmspPeers
    locations: Locations
    admission: StationAdmission
    dead_letters: DeadLetters


@asynccontextmanager
async def admin_tools(settings: Settings) -> AsyncIterator[AdminTools]:
    """The database brought up to date, and the admin use cases over it."""
    await db.upgrade_async(settings.database_url)
    engine = db.make_engine(settings.database_url, secrets=secret_box(settings))
    sessions = db.make_sessionmaker(engine)
    try:
        limits = httpx.Limits(max_connections=10)
        async with http_client(Egress(settings.outbound_policy), limits) as http:
            yield AdminTools(
                parties=PartyService(SqlPartyStore(sessions)),
                operator_keys=OperatorKeys(SqlOperatorKeyStore(sessions)),
                stations=StationMapping(SqlStationMappingStore(sessions)),
                emsp_peers=EmspPeers(
                    settings, EmspPeersSql(sessions), OcpiHandshake(http, settings)
                ),
                locations=Locations(SqlLocationStore(sessions)),
                admission=StationAdmission(
                    SqlStationAdmissionStore(sessions), settings.ocpp_admission
                ),
                dead_letters=DeadLetters(sessions, settings.delivery_result_horizon),
            )
    finally:
        await engine.dispose()
