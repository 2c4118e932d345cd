"""Fixtures: a real gateway under uvicorn, a real eMSP server, real simulated stations, and
SQLite or PostgreSQL underneath."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from chargegate.app import create_app
from chargegate.settings import Settings
from chargegate.sim import SimulatedStation16

from .support.emsp import FakeEmsp
from .support.servers import LiveServer, bound_socket, running
from .support.stations import station_factory

REDIS_URL = os.environ.get("CHARGEGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "CHARGEGATE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
# Seals secrets at rest on PostgreSQL in tests (a Fernet key: 32 url-safe base64 bytes).
TEST_SECRET_KEY = "dGVzdC1rZXktZm9yLWNoYXJnZWdhdGUtdGVzdHMtMDE="
# .ci/run sets this: there a missing service is a failure, never a skip.
REQUIRE_SERVICES = os.environ.get("CHARGEGATE_REQUIRE_SERVICES") == "1"


def _plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _postgres_reachable() -> str | None:
    try:
        conn = await asyncpg.connect(_plain_dsn(POSTGRES_URL), timeout=3)
    except Exception as exc:  # any failure means: not usable here
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


async def _redis_reachable(url: str) -> str | None:
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_connect_timeout=3)
    try:
        await client.ping()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        await client.aclose()
    return None


@pytest.fixture
async def redis_url() -> str:
    problem = await _redis_reachable(REDIS_URL)
    if problem is not None:
        if REQUIRE_SERVICES:
            pytest.fail(f"Redis required but unreachable at {REDIS_URL}: {problem}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {problem}")
    return REDIS_URL


@pytest.fixture
async def postgres_url(tmp_path: Path) -> AsyncIterator[str]:
    """A fresh PostgreSQL database (a cluster needs one the nodes share)."""
    async for url in _postgres_database():
        yield url


async def _postgres_database() -> AsyncIterator[str]:
    problem = await _postgres_reachable()
    if problem is not None:
        if REQUIRE_SERVICES:
            pytest.fail(f"PostgreSQL required but unreachable at {POSTGRES_URL}: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {problem}")
    name = f"cg_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_plain_dsn(POSTGRES_URL))
    await admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = POSTGRES_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Each end-to-end test runs on the embedded default and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'chargegate.db'}"
        return
    async for url in _postgres_database():
        yield url


def gateway_settings(database_url: str, public_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "public_url": public_url,
        "country_code": "NL",
        "party_id": "CGW",
        "command_timeout": 4.0,
        "command_timeout_margin": 1.5,
        "delivery_retry_base": 0.05,
        "delivery_retry_max": 0.3,
        "delivery_poll_interval": 0.05,
        "delivery_lease": 5.0,
        "heartbeat_interval": 300,
        "operator_timeout": 1.0,
        "sweep_interval": 0.1,
        # Tests connect stations by any id; tests/security/ prove the registered default.
        "ocpp_admission": "open",
        # Test peers, stubs and sinks listen on loopback (tests/security/test_ssrf.py narrows it).
        "outbound_allow": "127.0.0.0/8,localhost,::1",
        # Tests poll the APIs in tight loops from one key or party; tests/security/ prove the
        # rate limit.
        "rate_limit_per_second": 0,
    }
    if not database_url.startswith("sqlite"):
        # PostgreSQL has no database file to keep a key file beside (store/secrets.py): the
        # nodes of a test share this key as a cluster's must; SQLite tests use the key file.
        values["secret_key"] = TEST_SECRET_KEY
    values.update(overrides)
    return Settings(**values)


class Gateway:
    """A running chargegate: uvicorn on a loopback port, its components reachable for setup."""

    def __init__(self, database_url: str, **overrides: Any) -> None:
        self.sock = bound_socket()
        port = self.sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/ocpp"
        self.settings = gateway_settings(database_url, self.base_url, **overrides)
        self.app = create_app(self.settings)
        self.server = LiveServer(self.app, self.sock, self.settings)

    @property
    def state(self) -> Any:
        """The components bootstrap.py built for this server (`chargegate.gateway.Gateway`),
        while it runs; untyped so tests can reach into a component's internals."""
        return self.app.state.gateway

    async def start(self) -> Gateway:
        await self.server.start()
        return self

    async def stop(self) -> None:
        await self.server.stop()

    async def add_party(self, **kwargs: Any) -> str:
        kwargs.setdefault("role", "EMSP")
        kwargs.setdefault("country_code", "NL")
        kwargs.setdefault("party_id", "EMS")
        _, token_a = await self.state.parties.add(**kwargs)
        return token_a


@pytest.fixture
async def gateway(database_url: str) -> AsyncIterator[Gateway]:
    async with running(Gateway(database_url)) as gw:
        yield gw


@pytest.fixture
async def emsp() -> AsyncIterator[FakeEmsp]:
    async with running(FakeEmsp()) as peer:
        yield peer


StationFactory = Callable[..., Awaitable[SimulatedStation16]]


@pytest.fixture
async def stations(gateway: Gateway) -> AsyncIterator[StationFactory]:
    """Connect simulated OCPP 1.6J stations to the gateway; they are closed afterwards."""
    async with station_factory(gateway.ws_url, SimulatedStation16, "CP-001") as connect:
        yield connect
