"""Partners are bulkheads (issue 20): a poison object is set aside and the peer's FIFO moves on;
one bad URL or one peer that never answers costs no other peer anything; a peer that is back
gets what waited for it at once (docs/guarantees.md#delivery)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import select

from chargegate.service.outbox import outbox_values
from chargegate.sim import SimulatedStation16
from chargegate.store.models import Outbox, Party

from .conftest import Gateway
from .support.cli_process import run_cli
from .support.commands import start_session, unlock
from .support.emsp import FakeEmsp, Received
from .support.emsp_fixtures import api_key
from .support.ocpi_client import OcpiClient
from .support.operator import OperatorClient
from .support.servers import running


@asynccontextmanager
async def _gateway(database_url: str, **overrides: Any) -> AsyncIterator[Gateway]:
    gateway = await Gateway(database_url, **overrides).start()
    try:
        yield gateway
    finally:
        await gateway.stop()


async def _registered(gateway: Gateway, emsp: FakeEmsp) -> OcpiClient:
    token_a = await gateway.add_party(party_id=emsp.party_id)
    await emsp.register(gateway.base_url, token_a)
    return OcpiClient(gateway.base_url, emsp)


async def _until(condition: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    """Poll `condition` until it returns something truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = await condition()
        if found:
            return found
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def _rows(gateway: Gateway) -> list[Outbox]:
    async with gateway.state.sessions() as s:
        return list(await s.scalars(select(Outbox).order_by(Outbox.id)))


async def _queue_result(gateway: Gateway, peer: str, url: str) -> int:
    """An outbox row as an older gateway may have stored it (no check at receipt), due now."""
    async with gateway.state.sessions.begin() as s:
        party = await s.scalar(select(Party).where(Party.party_id == peer))
        assert party is not None
        row = Outbox(
            **outbox_values(
                kind="COMMAND_RESULT",
                party_id=party.id,
                party_version="2.2.1",
                method="POST",
                url=url,
                body={"result": "ACCEPTED"},
                correlation_id=None,
            )
        )
        s.add(row)
        await s.flush()
        return row.id


async def test_a_poison_session_is_a_dead_letter_and_the_fifo_moves_on(
    database_url: str, emsp: FakeEmsp
) -> None:
    """The eMSP refuses the ACTIVE Session for good (422): after `delivery_dead_letter_after`
    tries it is set aside, the COMPLETED Session and the CDR follow in order; the operator
    sees it (API, CLI) and can send it again."""
    async with _gateway(database_url, delivery_dead_letter_after=2) as gateway:
        ocpi = await _registered(gateway, emsp)
        station = SimulatedStation16("CP-1", gateway.ws_url, auto_transactions=False)
        await station.connect_and_boot()
        try:
            url = emsp.response_url("START_SESSION", "poison")
            await ocpi.command("START_SESSION", start_session("2.2.1", url, "CP-1", "CP-1-1"))
            await emsp.wait_for("/poison")

            def poison(r: Received) -> bool:
                return "/sessions/" in r.path and r.body.get("status") == "ACTIVE"

            emsp.refuse = poison
            transaction_id = await station.start_transaction(1, "TOKEN-001")
            await station.stop_transaction(transaction_id)
            await emsp.wait_for("/cdrs", timeout=15)
            pushes = [r for r in emsp.received if "/sessions/" in r.path or "/cdrs" in r.path]
            kinds = [
                r.body.get("status", "CDR") if "/sessions/" in r.path else "CDR" for r in pushes
            ]
            assert kinds == ["ACTIVE", "ACTIVE", "COMPLETED", "CDR"]  # two tries, then on

            key = await api_key(gateway, "operator", "read")
            operator = OperatorClient(gateway.base_url, key)
            [letter] = (await operator.get("/deliveries/dead")).json()
            assert letter["kind"] == "SESSION" and letter["refusals"] == 2
            assert letter["lastError"].startswith("HTTP 422")
            env = {"CHARGEGATE_SECRET_KEY": gateway.settings.secret_key or ""}
            code, out, _ = await run_cli(gateway, "delivery", "list-dead", **env)
            assert code == 0 and f"{letter['id']:>8} SESSION" in out

            reader = OperatorClient(gateway.base_url, await api_key(gateway, "read"))
            refused = await reader.post(f"/deliveries/dead/{letter['id']}/retry")
            assert refused.status_code == 403  # writes need the operator scope
            emsp.refuse = None
            retried = await operator.post(f"/deliveries/dead/{letter['id']}/retry")
            assert retried.status_code == 204
            sessions = await emsp.wait_for("/sessions/", count=4)
            assert sessions[-1].body["status"] == "ACTIVE"

            async def delivered() -> bool:
                row = next(r for r in await _rows(gateway) if r.id == letter["id"])
                return row.delivered_at is not None

            await _until(delivered)
            assert (await operator.get("/deliveries/dead")).json() == []
            missing = await operator.request("DELETE", f"/deliveries/dead/{letter['id']}")
            assert missing.status_code == 404  # delivered: no longer a dead letter
        finally:
            await station.close()


async def test_a_bad_url_fails_only_its_own_row(database_url: str, emsp: FakeEmsp) -> None:
    """`http://a..b/x` cannot be resolved (IDNA); it is refused at receipt, and a row that
    holds one anyway fails alone: another peer's result in the same round is delivered once."""
    async with (
        running(FakeEmsp(party_id="EMT")) as other,
        _gateway(database_url, delivery_lease=30.0) as gateway,
    ):
        ocpi = await _registered(gateway, emsp)
        await _registered(gateway, other)
        station = SimulatedStation16("CP-1", gateway.ws_url)
        await station.connect_and_boot()
        try:
            refused = await ocpi.command(
                "UNLOCK_CONNECTOR", unlock("http://a..b/x", "CP-1", "CP-1-1")
            )
            assert refused.json()["status_code"] == 2001
        finally:
            await station.close()
        bad = await _queue_result(gateway, emsp.party_id, "http://a..b/x")
        good = await _queue_result(gateway, other.party_id, other.response_url("STOP", "good"))

        async def both_recorded() -> bool:
            rows = {r.id: r for r in await _rows(gateway)}
            return rows[good].delivered_at is not None and rows[bad].attempts >= 1

        await _until(both_recorded, timeout=5)  # well inside the 30 s lease
        rows = {r.id: r for r in await _rows(gateway)}
        assert "a..b" in (rows[bad].last_error or "")
        assert len([r for r in other.received if r.path.endswith("/good")]) == 1


async def test_a_peer_that_never_answers_does_not_delay_another(
    database_url: str, emsp: FakeEmsp
) -> None:
    """Thirty results to a peer that hangs hold its own two connections; another peer's
    result, queued behind them, arrives at once."""
    async with (
        running(FakeEmsp(party_id="EMT")) as other,
        _gateway(database_url, delivery_peer_connections=2, delivery_http_timeout=20.0) as gateway,
    ):
        await _registered(gateway, emsp)
        await _registered(gateway, other)
        emsp.hang = lambda r: "/commands/" in r.path
        for i in range(30):
            await _queue_result(gateway, emsp.party_id, emsp.response_url("STOP", f"slow-{i}"))
        await emsp.wait_for("/slow-", count=2)
        queued = time.monotonic()
        await _queue_result(gateway, other.party_id, other.response_url("STOP", "fast"))
        await other.wait_for("/fast", timeout=15)
        assert time.monotonic() - queued < 3.0  # the hanging peer's timeout is 20 s
        # The hanging peer holds only its own budget of connections.
        assert len([r for r in emsp.received if "/slow-" in r.path]) == 2


async def test_a_peer_back_from_an_outage_gets_its_waiting_results_at_once(
    database_url: str, emsp: FakeEmsp
) -> None:
    """Results that backed off during an outage go out within a probe interval of the peer's
    first 2xx, not each on its own (by then seconds long) backoff clock."""
    async with _gateway(
        database_url,
        delivery_retry_base=1.0,
        delivery_retry_max=60.0,
        delivery_peer_probe=0.3,
    ) as gateway:
        ocpi = await _registered(gateway, emsp)
        station = SimulatedStation16("CP-1", gateway.ws_url, connectors=5)
        await station.connect_and_boot()
        try:
            emsp.fail_next = 10_000
            for i in range(1, 6):
                url = emsp.response_url("UNLOCK_CONNECTOR", f"outage-{i}")
                await ocpi.command("UNLOCK_CONNECTOR", unlock(url, "CP-1", f"CP-1-{i}"))

            async def backed_off() -> bool:
                rows = await _rows(gateway)
                return len(rows) == 5 and all(r.attempts >= 3 for r in rows)

            await _until(backed_off, timeout=15)  # each waits 2-4 s more on its own clock
            emsp.fail_next = 0
            back = time.monotonic()

            async def all_delivered() -> bool:
                return all(r.delivered_at is not None for r in await _rows(gateway))

            await _until(all_delivered, timeout=15)
            assert time.monotonic() - back < 1.5
        finally:
            await station.close()
