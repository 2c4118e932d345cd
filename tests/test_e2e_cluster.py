"""Several gateway nodes on one PostgreSQL and one Redis: a station's socket on one node,
requests for it on any node."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from chargegate.sim import SimulatedStation16
from chargegate.store.models import Outbox

from .conftest import Gateway
from .support.commands import start_session, unlock
from .support.emsp import FakeEmsp
from .support.ocpi_client import OcpiClient
from .support.operator import OperatorClient


class Cluster:
    def __init__(self, database_url: str, redis_url: str, nodes: int = 2, **overrides: object):
        prefix = f"cgtest-{uuid.uuid4().hex[:8]}"
        self.nodes = [
            Gateway(
                database_url,
                redis_url=redis_url,
                redis_prefix=prefix,
                node_id=f"node-{chr(ord('a') + i)}",
                registry_refresh=0.2,
                registry_ttl=2.0,
                **overrides,
            )
            for i in range(nodes)
        ]

    async def start(self) -> Cluster:
        for node in self.nodes:  # one at a time: the first one migrates the database
            await node.start()
        return self

    async def stop(self) -> None:
        for node in self.nodes:
            if node.server.server.started and not node.server.server.should_exit:
                await node.stop()


@pytest.fixture
async def cluster(postgres_url: str, redis_url: str) -> AsyncIterator[Cluster]:
    c = await Cluster(postgres_url, redis_url).start()
    try:
        yield c
    finally:
        await c.stop()


async def _station(node: Gateway, station_id: str, **kwargs: object) -> SimulatedStation16:
    station = SimulatedStation16(station_id, node.ws_url, **kwargs)  # type: ignore[arg-type]
    await station.connect_and_boot()
    return station


@pytest.mark.parametrize("version", ["2.1.1", "2.2.1"])
async def test_ocpi_command_on_any_node_reaches_the_station_and_result_goes_out_once(
    cluster: Cluster, emsp: FakeEmsp, version: str
) -> None:
    a, b = cluster.nodes
    await emsp.register(b.base_url, await a.add_party(), version)
    station = await _station(a, "CP-A", auto_transactions=False)
    try:
        for node, ref in ((b, "via-b"), (a, "via-a")):
            url = emsp.response_url("START_SESSION", ref)
            response = await OcpiClient(node.base_url, emsp).command(
                "START_SESSION", start_session(version, url, "CP-A", "CP-A-1")
            )
            assert response.json()["data"]["result"] == "ACCEPTED", response.json()
            [result] = await emsp.wait_for(ref)
            assert result.body == {"result": "ACCEPTED"}
        assert len(station.calls("RemoteStartTransaction")) == 2
        await asyncio.sleep(0.5)  # both nodes run the delivery worker: still one POST each
        assert len([r for r in emsp.received if "/commands/" in r.path]) == 2
    finally:
        await station.close()


async def test_operator_api_and_cluster_wide_cap(cluster: Cluster) -> None:
    a, b = cluster.nodes
    key = await a.state.operator_keys.add("ops")
    on_a, on_b = OperatorClient(a.base_url, key), OperatorClient(b.base_url, key)
    stations = [await _station(a, f"S-{i}") for i in range(10)]
    try:
        config = await on_b.post("/remote_commands/synchronous/S-0/get_configuration", {})
        assert config.status_code == 200 and config.json()["configurationKeys"]
        for station in stations:
            station.script.set("Reset", "silent")
        held = [
            asyncio.create_task(
                (on_a if i % 2 else on_b).post(
                    f"/remote_commands/synchronous/S-{i}/reset", {"type": "Soft"}
                )
            )
            for i in range(10)
        ]
        for _ in range(100):
            if await b.state.remote_commands._cap.in_flight() == 10:
                break
            await asyncio.sleep(0.02)
        for node in (on_a, on_b):
            refused = await node.post("/remote_commands/synchronous/S-0/reset", {"type": "Soft"})
            assert refused.status_code == 429
        assert [r.status_code for r in await asyncio.gather(*held)] == [504] * 10
        assert await a.state.remote_commands._cap.in_flight() == 0
    finally:
        for station in stations:
            await station.close()


async def test_node_dies_mid_command_command_resolves_and_station_moves(
    cluster: Cluster, emsp: FakeEmsp
) -> None:
    a, b = cluster.nodes
    await emsp.register(b.base_url, await a.add_party(), "2.2.1")
    station = await _station(a, "CP-X")
    station.script.set("UnlockConnector", "silent")
    url = emsp.response_url("UNLOCK_CONNECTOR", "dying")
    await OcpiClient(b.base_url, emsp).command("UNLOCK_CONNECTOR", unlock(url, "CP-X", "CP-X-1"))
    await station.wait_for_call("UnlockConnector", timeout=3)
    await a.stop()  # node A goes away with the call in flight
    [result] = await emsp.wait_for("dying", timeout=15)
    assert result.body["result"] in ("FAILED", "TIMEOUT")
    await station.close()

    moved = await _station(b, "CP-X")  # the station reconnects, through the balancer, to B
    try:
        assert await b.state.router.owner("CP-X") == "node-b"
        url = emsp.response_url("UNLOCK_CONNECTOR", "after")
        await OcpiClient(b.base_url, emsp).command(
            "UNLOCK_CONNECTOR", unlock(url, "CP-X", "CP-X-1")
        )
        [after] = await emsp.wait_for("after")
        assert after.body == {"result": "ACCEPTED"}
    finally:
        await moved.close()


async def test_station_reconnecting_to_another_node_takes_over(cluster: Cluster) -> None:
    a, b = cluster.nodes
    first = await _station(a, "CP-M")
    second = await _station(b, "CP-M")  # the old socket on A is still open
    try:
        assert await a.state.router.owner("CP-M") in ("node-a", "node-b")
        for _ in range(50):  # A's refresh sees the entry is B's and closes its stale socket
            if not a.state.router.holds("CP-M"):
                break
            await asyncio.sleep(0.05)
        assert not a.state.router.holds("CP-M")
        assert await a.state.router.owner("CP-M") == "node-b"
        key = await a.state.operator_keys.add("ops")
        reset = await OperatorClient(a.base_url, key).post(
            "/remote_commands/synchronous/CP-M/reset", {"type": "Soft"}
        )
        assert reset.status_code == 200
        assert second.calls("Reset") and not first.calls("Reset")
    finally:
        await first.close()
        await second.close()


async def test_readyz_reports_database_and_redis(cluster: Cluster) -> None:
    async with httpx.AsyncClient() as client:
        ready = await client.get(f"{cluster.nodes[0].base_url}/readyz")
        alive = await client.get(f"{cluster.nodes[0].base_url}/healthz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok" and ready.json()["redis"] == "ok"
    assert ready.json()["node"] == "node-a"
    assert alive.status_code == 200


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """A redis-server of the test's own, so it can be stopped and started mid-test."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tmp_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def wait_ready(self) -> None:
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.1):
                    return
            except OSError:
                await asyncio.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


async def test_redis_restart_during_traffic_loses_no_result(
    postgres_url: str, redis_url: str, emsp: FakeEmsp, tmp_path: Path
) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server binary not installed")
    redis = PrivateRedis(tmp_path)
    redis.start()
    await redis.wait_ready()
    cluster = await Cluster(postgres_url, redis.url).start()
    a, b = cluster.nodes
    try:
        await emsp.register(a.base_url, await a.add_party(), "2.2.1")
        on_a, on_b = await _station(a, "CP-R1"), await _station(b, "CP-R2")
        client_a = OcpiClient(a.base_url, emsp)

        async def unlock_via_a(station_id: str, ref: str) -> str:
            url = emsp.response_url("UNLOCK_CONNECTOR", ref)
            answer = await client_a.command(
                "UNLOCK_CONNECTOR", unlock(url, station_id, f"{station_id}-1")
            )
            return str(answer.json()["data"]["result"])

        assert await unlock_via_a("CP-R2", "before") == "ACCEPTED"  # across nodes
        await emsp.wait_for("before")
        redis.stop()
        # Redis is down: a station on this node is still served; one elsewhere is offline.
        assert await unlock_via_a("CP-R1", "during-local") == "ACCEPTED"
        assert await unlock_via_a("CP-R2", "during-remote") == "REJECTED"
        redis.start()
        await redis.wait_ready()
        inbox_b = f"{b.settings.redis_prefix}:node:node-b"
        for _ in range(100):  # nodes re-register and resubscribe after Redis is back
            listening = dict(await a.state.redis.pubsub_numsub(inbox_b))
            if await a.state.router.owner("CP-R2") == "node-b" and any(listening.values()):
                break
            await asyncio.sleep(0.1)
        assert await unlock_via_a("CP-R2", "after") == "ACCEPTED"
        for ref in ("before", "during-local", "after"):
            [result] = await emsp.wait_for(ref)
            assert result.body == {"result": "ACCEPTED"}, ref
        for _ in range(50):  # the acknowledgement is recorded just after the POST returns
            async with a.state.sessions() as s:
                rows = list(await s.scalars(select(Outbox)))
            if all(r.delivered_at is not None for r in rows):
                break
            await asyncio.sleep(0.05)
        assert len(rows) == 3 and all(r.delivered_at is not None for r in rows)
        await on_a.close()
        await on_b.close()
    finally:
        await cluster.stop()
        redis.stop()


# The single-node outcome matrix again, with the station on node A and the eMSP talking to B.
from .test_e2e_outcomes import START_CASES, UNLOCK_CASES  # noqa: E402


@pytest.mark.parametrize(("behaviour", "status", "r221", "r211"), START_CASES)
async def test_start_session_outcomes_across_nodes(
    cluster: Cluster, emsp: FakeEmsp, behaviour: str, status: str, r221: str, r211: str
) -> None:
    a, b = cluster.nodes
    await emsp.register(b.base_url, await a.add_party(), "2.2.1")
    station = await _station(a, "CP-1", auto_transactions=False)
    try:
        if status != "Available":
            await station.send_status(1, status)
        station.script.set("RemoteStartTransaction", behaviour)
        url = emsp.response_url("START_SESSION", behaviour)
        answer = await OcpiClient(b.base_url, emsp).command(
            "START_SESSION", start_session("2.2.1", url, "CP-1", "CP-1-1")
        )
        assert answer.json()["data"]["result"] == "ACCEPTED"
        [result] = await emsp.wait_for(f"/{behaviour}", timeout=15)
        assert result.body["result"] == r221
    finally:
        await station.close()


@pytest.mark.parametrize(("behaviour", "r221", "r211"), UNLOCK_CASES)
async def test_unlock_outcomes_across_nodes(
    cluster: Cluster, emsp: FakeEmsp, behaviour: str, r221: str, r211: str
) -> None:
    a, b = cluster.nodes
    await emsp.register(b.base_url, await a.add_party(), "2.1.1")
    station = await _station(a, "CP-1")
    try:
        station.script.set("UnlockConnector", behaviour)
        url = emsp.response_url("UNLOCK_CONNECTOR", behaviour)
        await OcpiClient(b.base_url, emsp).command(
            "UNLOCK_CONNECTOR", unlock(url, "CP-1", "CP-1-2")
        )
        [result] = await emsp.wait_for(f"/{behaviour}", timeout=15)
        assert result.body["result"] == r211
    finally:
        await station.close()
