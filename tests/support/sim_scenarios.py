"""Scenarios the OCPP 1.6J and 2.0.1 simulators play alike, each test module with its own
version's requests; the checks are here once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from ocpp.exceptions import InternalError, OCPPError
from ocpp.exceptions import NotImplementedError as OcppNotImplementedError

from chargegate.sim import SimulatedStation16, SimulatedStation201

from .fake_csms import CsmsSession, FakeCsms

AnyStation = SimulatedStation16 | SimulatedStation201

# Scripted behaviours answered with a CALLERROR, and the error the CSMS side raises for each.
CALL_ERRORS: list[tuple[str, type[OCPPError]]] = [
    ("call_error", InternalError),
    ("not_implemented", OcppNotImplementedError),
]


async def check_call_error(
    station: AnyStation,
    cp: CsmsSession,
    action: str,
    behaviour: str,
    error: type[OCPPError],
    request: Any,
) -> None:
    """`request`, of `action` scripted to `behaviour`, is answered with `error` and starts
    nothing."""
    station.script.set(action, behaviour)

    with pytest.raises(error):
        await cp.call(request, suppress=False)

    assert [name for name, _ in station.received] == [action]
    assert station.transactions == {}


async def check_silent_drops_only_that_call(
    station: AnyStation, cp: CsmsSession, action: str, request: Any, clear_cache: Any
) -> None:
    """`request`, of `action` scripted silent, gets no answer; the frames after it (a
    ClearCache, `clear_cache`, and a heartbeat) are still handled, both directions."""
    station.script.set(action, "silent")

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(cp.call(request), 0.2)

    cleared = await cp.call(clear_cache, suppress=False)
    assert cleared.status == "Accepted"
    assert await station.send_heartbeat()
    assert station.connected
    assert [name for name, _ in station.received] == [action, "ClearCache"]
    assert station.transactions == {}


async def check_disconnect_without_answer(
    station: AnyStation, cp: CsmsSession, action: str, request: Any
) -> None:
    """`request`, of `action` scripted to disconnect, closes the socket unanswered and leaves
    no reservation behind."""
    station.script.set(action, "disconnect")
    pending = asyncio.create_task(cp.call(request, suppress=False))

    await asyncio.wait_for(cp.closed.wait(), 1.0)
    await asyncio.wait_for(station.wait_closed(), 1.0)

    assert not pending.done()  # no answer came before the close
    pending.cancel()
    assert not station.connected
    assert not station.ready.is_set()
    assert station.reservations == {}


async def check_context_manager(csms: FakeCsms[Any], station: AnyStation) -> None:
    """`async with station` connects and boots it, and closes the connection at the end."""
    async with station:
        assert station.ready.is_set()
        session = await csms.session(station.id)
    await asyncio.wait_for(session.closed.wait(), 1.0)


async def check_reconnects(
    csms: FakeCsms[Any], station: AnyStation, clear_cache: Any, **last_status: Any
) -> None:
    """Run `station`, scripted to disconnect on its first ClearCache (`clear_cache`, the
    version's request), and check that it boots again on a new connection and answers there.

    `last_status` matches the last StatusNotification of a boot."""
    running = asyncio.create_task(station.run(reconnect_delay=0.01))
    try:
        first = await csms.session(station.id)
        await first.wait_for("StatusNotification", **last_status)
        pending = asyncio.create_task(first.call(clear_cache))
        await asyncio.wait_for(first.closed.wait(), 1.0)
        pending.cancel()

        second = await csms.session(station.id, nth=1)
        await second.wait_for("BootNotification")
        await second.wait_for("StatusNotification", **last_status)
        result = await second.call(clear_cache, suppress=False)
        assert result.status == "Accepted"
    finally:
        await station.close()
        await asyncio.wait_for(running, 1.0)
    assert not station.connected
