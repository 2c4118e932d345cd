"""The running gateway as its adapters see it: settings, the use cases, and the few pieces of
infrastructure a route or a socket needs. `bootstrap.py` builds it; `app.py` starts and stops
it with the ASGI lifespan and keeps it at `app.state.gateway`, where `gateway_of` finds it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import HTTPConnection

from chargegate.cluster.health import redis_readiness
from chargegate.cluster.local import LocalStationRouter
from chargegate.cluster.redis_router import RedisStationRouter
from chargegate.domain.request_rates import PeerRates
from chargegate.egress import Egress
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
from chargegate.settings import Settings
from chargegate.store.comm_log import CommunicationLog
from chargegate.store.health import database_readiness

Step = Callable[[], Awaitable[None]]


@dataclass(eq=False, slots=True)
class EmspServices:
    """The eMSP role's use cases."""

    events: EmspEvents
    peers: EmspPeers
    commands: EmspCommands
    receipts: EmspReceipts
    subscriptions: WebhookSubscriptions


@dataclass(eq=False, slots=True)
class Gateway:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient  # for calls a person waits on (credentials handshakes)
    egress: Egress  # where outgoing calls may go (checks ahead of a call)
    redis: Redis | None
    router: LocalStationRouter | RedisStationRouter
    comm_log: CommunicationLog
    parties: PartyService
    operator_keys: OperatorKeys
    commands: CommandService
    remote_commands: RemoteCommandService
    station_events: StationEvents
    admission: StationAdmission  # which stations are served (docs/security.md)
    emsp: EmspServices
    locations: Locations  # Location data and publication (docs/security.md#publishing)
    rates: PeerRates  # requests per second per caller (domain/request_rates.py)
    # How what runs beside the requests (workers, sweepers, clients) starts and stops, each in
    # the order it runs. Kept as steps so this view does not depend on the adapters behind them.
    starts: list[Step] = field(default_factory=list)
    stops: list[Step] = field(default_factory=list)

    async def start(self) -> None:
        for step in self.starts:
            await step()

    async def stop(self) -> None:
        for step in self.stops:
            await step()

    async def readiness(self) -> dict[str, str]:
        """Can this node reach what it needs right now?"""
        return {
            "database": await database_readiness(self.engine),
            "redis": await redis_readiness(self.redis),
        }


def gateway_of(connection: HTTPConnection) -> Gateway:
    """The gateway serving this request or WebSocket."""
    gateway: Gateway = connection.app.state.gateway
    return gateway
