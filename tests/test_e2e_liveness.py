"""A station whose connection went silent is offline within a bound, and is answered as any
offline station is (at once, nothing stored); one that heartbeats stays online
(docs/guarantees.md#liveness)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from chargegate.sim import SimulatedStation16

from .conftest import Gateway
from .support.commands import start_session
from .support.emsp import FakeEmsp
from .support.ocpi_client import OcpiClient
from .support.operator import OperatorClient
from .support.servers import running
from .support.tcp_relay import TcpRelay
from .test_e2e_cluster import Cluster

# Short bounds for tests: pings every 0.3 s, 0.5 s for a pong; Heartbeats every 1 s, gone
# after 2 s without a frame.
PINGS = {"ws_ping_interval": 0.3, "ws_ping_timeout": 0.5}
HEARTBEATS: dict[str, Any] = {"heartbeat_interval": 1, "heartbeat_grace_factor": 2.0}
SLACK = 2.0  # a loaded machine's scheduling


@pytest.fixture
async def relay_to() -> AsyncIterator[Any]:
    relays: list[TcpRelay] = []

    async def make(gateway: Gateway) -> TcpRelay:
        relay = await TcpRelay(int(gateway.base_url.rsplit(":", 1)[1])).start()
        relays.append(relay)
        return relay

    yield make
    for relay in relays:
        await relay.stop()


async def _offline_within(gateway: Gateway, station_id: str, bound: float) -> float:
    """Seconds until the gateway has the station offline; fails past `bound`."""
    started = time.monotonic()
    async with asyncio.timeout(bound):
        while True:
            if not await gateway.state.router.is_connected(station_id):
                break
            await asyncio.sleep(0.02)
    return time.monotonic() - started


async def _answered_at_once_as_offline(gateway: Gateway, emsp: FakeEmsp, station_id: str) -> None:
    await emsp.register(gateway.base_url, await gateway.add_party(), "2.2.1")
    ocpi = OcpiClient(gateway.base_url, emsp)
    url = ocpi.emsp.response_url("START_SESSION")
    started = time.monotonic()
    response = await ocpi.command("START_SESSION", start_session("2.2.1", url, station_id))
    assert time.monotonic() - started < 1.0
    body = response.json()
    assert body["data"]["result"] == "REJECTED" and "offline" in body["status_message"]
    operator = OperatorClient(gateway.base_url, await gateway.state.operator_keys.add("ops"))
    listed = (await operator.get("/stations")).json()
    rows = listed["items"] if isinstance(listed, dict) else listed
    assert [s["online"] for s in rows if s["cpId"] == station_id] == [False]


async def test_half_open_connection_is_offline_once_a_ping_goes_unanswered(
    database_url: str, emsp: FakeEmsp, relay_to: Any
) -> None:
    async with running(Gateway(database_url, **PINGS)) as gateway:
        relay = await relay_to(gateway)
        station = SimulatedStation16("CP-1", f"ws://127.0.0.1:{relay.port}/ocpp")
        await station.connect_and_boot()
        try:
            relay.freeze()
            bound = PINGS["ws_ping_interval"] + PINGS["ws_ping_timeout"]
            await _offline_within(gateway, "CP-1", bound + SLACK)
            await _answered_at_once_as_offline(gateway, emsp, "CP-1")
        finally:
            await relay.stop()  # the station's side then ends at once
            await station.close()


async def test_station_that_sends_nothing_is_offline_after_missed_heartbeats(
    database_url: str, emsp: FakeEmsp
) -> None:
    # No pings: the connection answers them; only the missing frames can tell.
    async with running(Gateway(database_url, ws_ping_interval=0, **HEARTBEATS)) as gateway:
        station = SimulatedStation16("CP-1", gateway.ws_url, heartbeat_interval=3600)
        await station.connect_and_boot()
        try:
            bound = HEARTBEATS["heartbeat_interval"] * HEARTBEATS["heartbeat_grace_factor"]
            took = await _offline_within(gateway, "CP-1", bound + SLACK)
            assert took >= bound - 0.5  # not before the bound (boot's last frame came first)
            await _answered_at_once_as_offline(gateway, emsp, "CP-1")
            # The gateway closed the socket: the station sees its connection end.
            async with asyncio.timeout(5):
                await station.wait_closed()
        finally:
            await station.close()


async def test_station_that_heartbeats_stays_online(database_url: str, relay_to: Any) -> None:
    async with running(Gateway(database_url, **PINGS, **HEARTBEATS)) as gateway:
        relay = await relay_to(gateway)
        # Heartbeats at the interval the gateway told it (1 s), pings through the relay.
        station = SimulatedStation16("CP-1", f"ws://127.0.0.1:{relay.port}/ocpp")
        beats: list[float] = []
        send = station.send_heartbeat

        async def counted() -> str:
            beats.append(time.monotonic())
            return await send()

        station.send_heartbeat = counted  # type: ignore[method-assign]
        await station.connect_and_boot()
        try:
            async with asyncio.timeout(15):
                # Past twice the silence bound, and many ping rounds.
                while len(beats) < 5:
                    assert await gateway.state.router.is_connected("CP-1")
                    await asyncio.sleep(0.05)
            assert await gateway.state.router.is_connected("CP-1")
        finally:
            await station.close()


async def test_silent_station_is_offline_on_every_node_of_a_cluster(
    postgres_url: str, redis_url: str
) -> None:
    cluster = await Cluster(postgres_url, redis_url, 2, ws_ping_interval=0, **HEARTBEATS).start()
    try:
        holder, other = cluster.nodes
        station = SimulatedStation16("CP-1", holder.ws_url, heartbeat_interval=3600)
        await station.connect_and_boot()
        try:
            async with asyncio.timeout(5):  # registered in Redis: the other node sees it
                while True:
                    if await other.state.router.is_connected("CP-1"):
                        break
                    await asyncio.sleep(0.02)
            bound = HEARTBEATS["heartbeat_interval"] * HEARTBEATS["heartbeat_grace_factor"]
            await _offline_within(other, "CP-1", bound + SLACK)
            assert not await holder.state.router.is_connected("CP-1")
        finally:
            await station.close()
    finally:
        await cluster.stop()
