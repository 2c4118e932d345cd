"""Fixtures for eMSP tests: a second chargegate (the eMSP) on its own database beside the CPO
one, a scripted CPO, and the handshake between them. Import the fixtures into a test module."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from chargegate.service.emsp.records import Peer as EmspPeer

from ..conftest import Gateway
from .servers import running
from .stub_cpo import StubCpo

EMSP_SETTINGS: dict[str, Any] = {
    "emsp_country_code": "NL",
    "emsp_party_id": "EMS",
    "emsp_business_name": "Test eMSP",
    # Above the CPO gateway's 4 s command timeout, as a real 2.1.1 default must be.
    "emsp_default_result_timeout": 6.0,
}


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture
async def emsp_database_url(database_url: str) -> AsyncIterator[str]:
    """The eMSP's own database, of the same kind as the CPO's (the CPO one must exist first)."""
    if database_url.startswith("sqlite"):
        yield database_url.replace("chargegate.db", "emsp.db")
        return
    base, _, cpo_name = database_url.rpartition("/")
    name = f"{cpo_name}_emsp_{uuid.uuid4().hex[:4]}"
    admin = await asyncpg.connect(_plain(database_url))
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def emsp_gateway(emsp_database_url: str) -> AsyncIterator[Gateway]:
    async with running(Gateway(emsp_database_url, **EMSP_SETTINGS)) as gw:
        yield gw


@pytest.fixture
async def stub_cpo() -> AsyncIterator[StubCpo]:
    async with running(StubCpo()) as cpo:
        yield cpo


async def connect_to_chargegate(
    cpo: Gateway, emsp: Gateway, version: str | None = None, **party: Any
) -> EmspPeer:
    """The CPO's operator adds us as an eMSP party; we run the handshake with its token A."""
    token_a = await cpo.add_party(country_code="NL", party_id="EMS", **party)
    peer: EmspPeer = await emsp.state.emsp.peers.connect(
        f"{cpo.base_url}/ocpi/versions", token_a, version=version
    )
    return peer


async def connect_to_stub(
    stub: StubCpo, emsp: Gateway, version: str | None = None, profile: str | None = None
) -> EmspPeer:
    peer: EmspPeer = await emsp.state.emsp.peers.connect(
        stub.versions_url, stub.token_a, version=version, profile=profile
    )
    return peer


async def api_key(gateway: Gateway, *scopes: str) -> str:
    key: str = await gateway.state.operator_keys.add("test", scopes or ("operator", "read"))
    return key
