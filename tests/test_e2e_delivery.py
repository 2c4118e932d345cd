"""Durable results: retries until the eMSP acknowledges, exactly one outcome per command, and
nothing lost across a gateway restart."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select

from chargegate.domain.commands import CommandResultType, CommandType
from chargegate.sim import SimulatedStation16
from chargegate.store.models import Command, Outbox

from .conftest import Gateway, StationFactory
from .support.commands import start_session, unlock
from .support.emsp import FakeEmsp
from .support.ocpi_client import OcpiClient


async def _registered(gateway: Gateway, emsp: FakeEmsp, version: str = "2.2.1") -> OcpiClient:
    await emsp.register(gateway.base_url, await gateway.add_party(), version)
    return OcpiClient(gateway.base_url, emsp)


async def test_callback_failing_several_times_is_retried_until_accepted(
    gateway: Gateway, emsp: FakeEmsp, stations: StationFactory
) -> None:
    ocpi = await _registered(gateway, emsp)
    await stations("CP-1")
    emsp.fail_next = 3
    url = emsp.response_url("UNLOCK_CONNECTOR", "retry-me")
    response = await ocpi.command("UNLOCK_CONNECTOR", unlock(url, "CP-1", "CP-1-1"))
    assert response.json()["data"]["result"] == "ACCEPTED"
    attempts = await emsp.wait_for("retry-me", count=4)
    assert [a.body for a in attempts] == [{"result": "ACCEPTED"}] * 4
    # Every retry is the same outcome with the same correlation id; request ids are new.
    assert len({a.headers["x-correlation-id"] for a in attempts}) == 1
    assert len({a.headers["x-request-id"] for a in attempts}) == 4
    await asyncio.sleep(0.5)
    assert len([r for r in emsp.received if "retry-me" in r.path]) == 4  # no fifth
    async with gateway.state.sessions() as s:
        row = await s.scalar(select(Outbox).where(Outbox.kind == "COMMAND_RESULT"))
    assert row is not None and row.delivered_at is not None and row.attempts == 4


async def test_silent_station_times_out_before_the_announced_timeout(
    gateway: Gateway, emsp: FakeEmsp, stations: StationFactory
) -> None:
    ocpi = await _registered(gateway, emsp)
    station = await stations("CP-1")
    station.script.set("RemoteStartTransaction", "silent")
    url = emsp.response_url("START_SESSION", "silent")
    sent_at = time.monotonic()
    response = await ocpi.command("START_SESSION", start_session("2.2.1", url, "CP-1", "CP-1-1"))
    announced = response.json()["data"]["timeout"]
    [result] = await emsp.wait_for("silent")
    elapsed = time.monotonic() - sent_at
    assert result.body["result"] == "TIMEOUT"
    assert elapsed < announced
    assert elapsed >= gateway.settings.station_deadline - 0.1


async def test_late_station_answer_changes_nothing(
    gateway: Gateway, emsp: FakeEmsp, stations: StationFactory
) -> None:
    """The command is TIMEOUT once decided; a late answer is in the log, not in a second POST."""
    ocpi = await _registered(gateway, emsp)
    station = await stations("CP-1")
    station.script.set("UnlockConnector", "silent")
    url = emsp.response_url("UNLOCK_CONNECTOR", "late")
    await ocpi.command("UNLOCK_CONNECTOR", unlock(url, "CP-1", "CP-1-1"))
    [result] = await emsp.wait_for("late")
    assert result.body["result"] == "TIMEOUT"
    command_id = await _only_command_id(gateway)
    assert not await gateway.state.commands.resolve(
        command_id, CommandType.UNLOCK_CONNECTOR, CommandResultType.ACCEPTED, None
    )
    await asyncio.sleep(0.3)
    assert len([r for r in emsp.received if "late" in r.path]) == 1


async def _only_command_id(gateway: Gateway) -> str:
    async with gateway.state.sessions() as s:
        [command_id] = list(await s.scalars(select(Command.id)))
    return command_id


async def test_restart_delivers_stored_results_and_times_out_pending_commands(
    database_url: str, emsp: FakeEmsp
) -> None:
    first = await Gateway(database_url).start()
    ocpi = await _registered(first, emsp)
    # One command answered by the station while the eMSP is down, one left with a silent station.
    station = SimulatedStation16("CP-1", first.ws_url, connectors=2)
    await station.connect_and_boot()
    emsp.fail_next = 10_000
    answered = emsp.response_url("UNLOCK_CONNECTOR", "answered")
    await ocpi.command("UNLOCK_CONNECTOR", unlock(answered, "CP-1", "CP-1-1"))
    await emsp.wait_for("answered")  # at least one failed attempt
    station.script.set("UnlockConnector", "silent")
    pending = emsp.response_url("UNLOCK_CONNECTOR", "pending")
    await ocpi.command("UNLOCK_CONNECTOR", unlock(pending, "CP-1", "CP-1-2"))
    await station.wait_for_call("UnlockConnector", timeout=2)
    await first.state.commands.stop()  # the process dies with the call in flight ...
    await station.close()
    await first.stop()  # ... so the silent command is still PENDING in the database

    emsp.fail_next = 0
    await asyncio.sleep(first.settings.station_deadline)  # its deadline passes while we are down
    second = await Gateway(database_url).start()
    try:
        [timed_out] = await emsp.wait_for("pending")
        assert timed_out.body["result"] == "TIMEOUT"
        for _ in range(100):
            async with second.state.sessions() as s:
                undelivered = list(
                    await s.scalars(select(Outbox).where(Outbox.delivered_at.is_(None)))
                )
            if not undelivered:
                break
            await asyncio.sleep(0.05)
        assert undelivered == []
        # The stored result went out unchanged after the restart: one outcome, many attempts.
        answered_bodies = [r.body for r in emsp.received if r.path.endswith("answered")]
        assert len(answered_bodies) >= 2
        assert all(body == {"result": "ACCEPTED"} for body in answered_bodies)
    finally:
        await second.stop()


@pytest.mark.parametrize("version", ["2.1.1", "2.2.1"])
async def test_one_result_per_command_under_concurrency(
    gateway: Gateway, emsp: FakeEmsp, stations: StationFactory, version: str
) -> None:
    """Twenty commands to one station at once: one OCPP call at a time, twenty results."""
    ocpi = await _registered(gateway, emsp, version)
    station = await stations("CP-1")
    refs = [f"many-{i}" for i in range(20)]
    responses = await asyncio.gather(
        *(
            ocpi.command(
                "UNLOCK_CONNECTOR",
                unlock(emsp.response_url("UNLOCK_CONNECTOR", ref), "CP-1", "CP-1-1"),
            )
            for ref in refs
        )
    )
    assert all(r.json()["data"]["result"] == "ACCEPTED" for r in responses)
    await emsp.wait_for("/UNLOCK_CONNECTOR/many-", count=20)
    per_ref = {ref: [r for r in emsp.received if r.path.endswith(ref)] for ref in refs}
    assert all(len(v) == 1 and v[0].body == {"result": "ACCEPTED"} for v in per_ref.values())
    assert len(station.calls("UnlockConnector")) == 20
    # Twenty acknowledgements at once, recorded in group commits: none is lost, each row is
    # marked delivered after exactly one attempt (a lost one would be sent again later).
    for _ in range(100):
        async with gateway.state.sessions() as s:
            rows = list(await s.scalars(select(Outbox).where(Outbox.kind == "COMMAND_RESULT")))
        if len(rows) == 20 and all(r.delivered_at is not None for r in rows):
            break
        await asyncio.sleep(0.05)
    assert len(rows) == 20
    assert all(r.delivered_at is not None and r.attempts == 1 for r in rows)


async def test_result_delivery_gives_up_after_the_horizon(
    database_url: str, emsp: FakeEmsp
) -> None:
    gateway = await Gateway(database_url, delivery_result_horizon=0.5).start()
    try:
        ocpi = await _registered(gateway, emsp)
        station = SimulatedStation16("CP-1", gateway.ws_url)
        await station.connect_and_boot()
        emsp.fail_next = 10_000
        url = emsp.response_url("UNLOCK_CONNECTOR", "never")
        await ocpi.command("UNLOCK_CONNECTOR", unlock(url, "CP-1", "CP-1-1"))
        for _ in range(100):
            async with gateway.state.sessions() as s:
                row = await s.scalar(select(Outbox))
            if row is not None and row.gave_up_at is not None:
                break
            await asyncio.sleep(0.05)
        assert row is not None and row.gave_up_at is not None and row.delivered_at is None
        assert "HTTP 500" in (row.last_error or "")
        tries = len([r for r in emsp.received if "never" in r.path])
        await asyncio.sleep(0.4)
        assert len([r for r in emsp.received if "never" in r.path]) == tries
        await station.close()
    finally:
        await gateway.stop()


async def test_session_pushes_are_store_and_forward_in_fifo_order(
    gateway: Gateway, emsp: FakeEmsp, stations: StationFactory
) -> None:
    """GIREVE: a push that failed is retried, and later pushes wait behind it."""
    ocpi = await _registered(gateway, emsp)
    station = await stations("CP-1", auto_transactions=False)
    url = emsp.response_url("START_SESSION", "fifo")
    await ocpi.command("START_SESSION", start_session("2.2.1", url, "CP-1", "CP-1-1"))
    await emsp.wait_for("/fifo")
    emsp.fail_next = 4
    transaction_id = await station.start_transaction(1, "TOKEN-001")
    await station.stop_transaction(transaction_id)
    pushes = await emsp.wait_for("/sessions/", count=6)
    statuses = [p.body["status"] for p in pushes]
    assert statuses == ["ACTIVE"] * 5 + ["COMPLETED"]
