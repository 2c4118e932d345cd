"""Operator remote requests against fakes of their ports (tests/service/fakes.py): remote
start attempts (validUntil, success when the transaction starts, expiry, the stop after
stopMinutes), the cap on requests in flight, and locks. No database, no server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chargegate.cluster.cap import LocalCap
from chargegate.domain import station_calls as sc
from chargegate.domain.clock import as_utc
from chargegate.domain.station_calls import Outcome, StationReply
from chargegate.service.remote_commands import RemoteCommandError, RemoteCommandService
from chargegate.settings import Settings
from chargegate.store.models import RemoteRequest

from .fakes import FakeRemoteRequestStore, FakeRouter

MINUTE = 60.0


class Remote:
    def __init__(self, cap: int = 10) -> None:
        self.now = datetime.now(UTC)
        self.store = FakeRemoteRequestStore()
        self.store.add_station("CP-1", 1, 2, now=self.now)
        self.router = FakeRouter()
        self.router.online.add("CP-1")
        self.cap = LocalCap(cap)
        self.locked: list[tuple[str, int | None, str]] = []
        self.service = RemoteCommandService(
            Settings(operator_minute_seconds=MINUTE, remote_start_valid_minutes=10),
            self.store,
            self.router,
            self.cap,
            on_lock=self._on_lock,
        )

    async def _on_lock(self, station_id: str, connector_id: int | None, why: str) -> None:
        self.locked.append((station_id, connector_id, why))

    async def attempt(self, **given: Any) -> RemoteRequest:
        values: dict[str, Any] = dict(
            station_id="CP-1",
            connector_id=1,
            connector_uuid=None,
            id_tag="TAG1",
            valid_until=None,
            stop_minutes=None,
            key_id=None,
        )
        values.update(given)
        record = await self.service.remote_start_attempt(**values)
        # The fake's own record, which the tests move in time.
        return self.store.records[record.id]

    async def finished(self) -> tuple[str, str]:
        """The next record the service finished (waits for it)."""
        return await asyncio.wait_for(self.store.finished.get(), 1)


@pytest.fixture
async def remote() -> AsyncIterator[Remote]:
    remote = Remote()
    yield remote
    await remote.service.stop()


async def test_an_attempt_sends_remote_start_and_waits_with_default_valid_until(
    remote: Remote,
) -> None:
    attempt = await remote.attempt()
    assert attempt.status == "PENDING" and attempt.kind == "remote_start_attempt"
    assert await remote.finished() == (attempt.id, "WAITING")
    assert attempt.finished_at is None  # still followed
    [(station_id, request, timeout)] = remote.router.calls
    assert station_id == "CP-1" and isinstance(request, sc.RemoteStart)
    assert (request.connector_id, request.id_token) == (1, "TAG1")
    assert timeout == Settings().operator_timeout
    assert attempt.valid_until is not None
    default = as_utc(attempt.valid_until) - remote.now
    assert timedelta(minutes=10) <= default < timedelta(minutes=10, seconds=5)
    assert attempt.request["connectorUuid"] == "CP-1-uuid-1"
    assert remote.cap.in_flight == 0  # given back once the station answered


async def test_a_refused_attempt_is_finished_with_the_station_status(remote: Remote) -> None:
    remote.router.replies["CP-1"] = StationReply(Outcome.REJECTED, "Rejected")
    attempt = await remote.attempt()
    assert await remote.finished() == (attempt.id, "REJECTED")
    assert attempt.response == {"status": "Rejected"} and attempt.finished_at is not None


async def test_valid_until_in_the_past_locks_and_offline_are_refused(remote: Remote) -> None:
    with pytest.raises(RemoteCommandError) as past:
        await remote.attempt(valid_until=remote.now - timedelta(seconds=1))
    assert past.value.kind == "invalid"
    with pytest.raises(RemoteCommandError) as neither:
        await remote.attempt(connector_id=None)
    assert neither.value.kind == "invalid"
    with pytest.raises(RemoteCommandError) as unknown:
        await remote.attempt(connector_id=9)
    assert unknown.value.kind == "not_found"
    await remote.service.set_connector_lock("CP-1", "CP-1-uuid-1", True)
    assert remote.locked == [("CP-1", 1, "the operator locked the connector")]
    with pytest.raises(RemoteCommandError) as locked:
        await remote.attempt()
    assert locked.value.kind == "locked"
    await remote.service.set_station_lock("CP-1", True)
    with pytest.raises(RemoteCommandError) as station_locked:
        await remote.attempt(connector_id=2)
    assert "permanently locked" in station_locked.value.message
    await remote.service.set_station_lock("CP-1", False)
    remote.router.online.clear()
    with pytest.raises(RemoteCommandError) as offline:
        await remote.attempt(connector_id=2)
    assert offline.value.kind == "offline"
    assert remote.store.records == {} and remote.router.calls == []


async def test_the_attempt_succeeds_when_its_transaction_starts_and_stops_after_minutes(
    remote: Remote,
) -> None:
    attempt = await remote.attempt(stop_minutes=2)
    await remote.finished()
    await remote.service.tick()
    assert attempt.status == "WAITING"  # nothing started yet, validUntil ahead
    started = remote.now + timedelta(seconds=30)
    session = remote.store.add_session("CP-1", 1, "TAG1", started)
    await remote.service.tick()
    assert (attempt.status, attempt.session_id) == ("SUCCEEDED", session.id)
    assert attempt.stop_at == started + timedelta(seconds=2 * MINUTE)
    assert remote.router.calls[1:] == []  # not due yet
    attempt.stop_at = datetime.now(UTC) - timedelta(seconds=1)
    remote.cap.limit = 0  # the system's own stop does not count against the operators' cap
    await remote.service.tick()
    stop = remote.store.records[attempt.stop_request_id or ""]
    assert (stop.kind, stop.request["system"], stop.session_id) == ("remote_stop", True, session.id)
    assert await remote.finished() == (stop.id, "ACCEPTED")
    assert remote.router.calls[-1][1] == sc.RemoteStop(session.transaction_id or "")
    await remote.service.tick()  # claimed once: no second stop
    assert [r.kind for r in remote.store.records.values()].count("remote_stop") == 1


async def test_the_attempt_expires_at_valid_until(remote: Remote) -> None:
    attempt = await remote.attempt(valid_until=remote.now + timedelta(seconds=30))
    await remote.finished()
    # A transaction with another idTag, or started after validUntil, is not this attempt's.
    remote.store.add_session("CP-1", 1, "OTHER", remote.now + timedelta(seconds=5))
    remote.store.add_session("CP-1", 1, "TAG1", remote.now + timedelta(seconds=31))
    attempt.valid_until = datetime.now(UTC) - timedelta(seconds=1)
    await remote.service.tick()
    assert (attempt.status, attempt.message) == (
        "EXPIRED",
        "no transaction started before validUntil",
    )
    assert attempt.finished_at is not None and attempt.session_id is None


async def test_the_cap_refuses_the_request_over_it_and_frees_slots_after_answers() -> None:
    remote = Remote(cap=2)
    remote.router.hold = asyncio.Event()
    first = await remote.attempt()
    second = await remote.service.clear_cache("CP-1", None)
    with pytest.raises(RemoteCommandError) as over:
        await remote.attempt(connector_id=2)
    assert over.value.kind == "cap"
    assert remote.cap.in_flight == 2
    remote.router.hold.set()
    finished = {await remote.finished(), await remote.finished()}
    assert finished == {(first.id, "WAITING"), (second.id, "ACCEPTED")}
    assert remote.cap.in_flight == 0
    await remote.service.stop()


async def test_a_silent_station_is_a_timeout_error_with_the_record(remote: Remote) -> None:
    remote.router.replies["CP-1"] = StationReply(Outcome.TIMEOUT, description="no answer")
    with pytest.raises(RemoteCommandError) as timed_out:
        await remote.service.reset("CP-1", "Soft", None)
    assert (timed_out.value.kind, timed_out.value.message) == ("timeout", "no answer")
    assert timed_out.value.record_id is not None
    record = remote.store.records[timed_out.value.record_id]
    assert record.status == "TIMEOUT" and record.finished_at is not None
    assert remote.cap.in_flight == 0
