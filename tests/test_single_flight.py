"""Concurrent lookups of one key share one call (service/single_flight.py), and the peer lookup
by token, on a cache miss under load, asks the database once (service/parties.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from chargegate.service.parties import PartyService
from chargegate.service.single_flight import SingleFlight
from chargegate.store import db
from chargegate.store.party_store import SqlPartyStore


class Slow:
    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()

    async def __call__(self) -> str:
        self.calls += 1
        number = self.calls
        await self.release.wait()
        return f"answer {number}"


async def test_callers_at_once_share_one_call() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    slow = Slow()
    waiting = [asyncio.create_task(flight.run("k", slow)) for _ in range(5)]
    await asyncio.sleep(0)
    slow.release.set()
    assert await asyncio.gather(*waiting) == ["answer 1"] * 5
    assert slow.calls == 1
    # Landed: the next caller starts a new call.
    assert await flight.run("k", slow) == "answer 2"


async def test_a_cancelled_caller_leaves_the_call_to_the_others() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    slow = Slow()
    first = asyncio.create_task(flight.run("k", slow))
    second = asyncio.create_task(flight.run("k", slow))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    slow.release.set()
    assert await second == "answer 1"
    assert first.cancelled() and slow.calls == 1


async def test_a_failure_reaches_every_caller_and_is_not_kept() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    attempts = 0

    async def failing() -> str:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0.01)
        raise ConnectionError("database away")

    outcomes = await asyncio.gather(
        flight.run("k", failing), flight.run("k", failing), return_exceptions=True
    )
    assert [type(o) for o in outcomes] == [ConnectionError, ConnectionError]
    with pytest.raises(ConnectionError):
        await flight.run("k", failing)
    assert attempts == 2


async def test_forget_makes_the_next_caller_start_afresh() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    slow = Slow()
    before = asyncio.create_task(flight.run("k", slow))
    await asyncio.sleep(0)
    flight.forget()
    after = asyncio.create_task(flight.run("k", slow))
    await asyncio.sleep(0)
    slow.release.set()
    assert sorted(await asyncio.gather(before, after)) == ["answer 1", "answer 2"]


@pytest.fixture
async def parties(tmp_path: Path) -> AsyncIterator[tuple[PartyService, AsyncEngine]]:
    """A party service on a database of its own."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'parties.db'}"
    await db.upgrade_async(url)
    engine = db.make_engine(url)
    try:
        yield PartyService(SqlPartyStore(db.make_sessionmaker(engine))), engine
    finally:
        await engine.dispose()


def _party_reads(engine: AsyncEngine) -> list[str]:
    """The SELECTs on parties run from now on."""
    lookups: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _seen(_conn: Any, _cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "parties" in statement:
            lookups.append(statement)

    return lookups


async def test_a_burst_of_requests_looks_the_token_up_once(
    parties: tuple[PartyService, AsyncEngine],
) -> None:
    service, engine = parties
    _, token_a = await service.add(role="EMSP", country_code="NL", party_id="EMS")
    lookups = _party_reads(engine)
    callers = await asyncio.gather(*(service.by_token([token_a]) for _ in range(50)))
    assert {c.party.party_id for c in callers if c is not None} == {"EMS"}
    assert len(lookups) == 1
    assert await service.by_token(["no-such-token"]) is None


async def test_a_burst_of_results_reads_their_party_once(
    parties: tuple[PartyService, AsyncEngine],
) -> None:
    service, engine = parties
    party, _ = await service.add(role="EMSP", country_code="NL", party_id="EMS")
    lookups = _party_reads(engine)
    loaded = await asyncio.gather(*(service.cache.load(party.id) for _ in range(50)))
    assert {p.party_id for p in loaded if p is not None} == {"EMS"}
    assert len(lookups) == 1
    service.cache.clear()  # a registration change: the next caller reads afresh
    assert await service.cache.load(party.id) is not None
    assert len(lookups) == 2


async def test_a_party_read_across_a_registration_change_is_not_kept(
    parties: tuple[PartyService, AsyncEngine],
) -> None:
    service, engine = parties
    party, _ = await service.add(role="EMSP", country_code="NL", party_id="EMS")
    lookups = _party_reads(engine)

    changes = [service.cache.clear]

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def _changed_meanwhile(*_args: Any) -> None:
        # The registration changes while the first read is in flight (it read the old row).
        if changes:
            changes.pop()()

    assert await service.cache.load(party.id) is not None
    assert service.cache.peek(party.id) is None
    assert await service.cache.load(party.id) is not None
    assert service.cache.peek(party.id) is not None  # a read after the change is kept
    assert len(lookups) == 2
