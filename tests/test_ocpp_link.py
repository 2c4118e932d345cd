"""One call at a time to a station, each with its own deadline (ocpp/link.py), seen from a
station written frame by frame: an answer goes to the call with its unique id only, a late
answer changes nothing, a lost connection ends the waiting call at once."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from chargegate.domain import station_calls as sc
from chargegate.domain.station_calls import Outcome

from .conftest import Gateway


async def _frame(ws: ClientConnection) -> list[Any]:
    frame: list[Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
    return frame


@pytest.fixture
async def station(gateway: Gateway) -> AsyncIterator[ClientConnection]:
    async with connect(
        f"{gateway.ws_url}/CP-RAW",
        subprotocols=[Subprotocol("ocpp1.6")],
        compression=None,
    ) as ws:
        boot = {"chargePointVendor": "raw", "chargePointModel": "frames"}
        await ws.send(json.dumps([2, "boot-1", "BootNotification", boot]))
        answer = await _frame(ws)
        assert answer[:2] == [3, "boot-1"] and answer[2]["status"] == "Accepted"
        yield ws


def _unlock(gateway: Gateway, timeout: float) -> asyncio.Task[sc.StationReply]:
    return asyncio.create_task(gateway.state.router.call("CP-RAW", sc.Unlock(1), timeout))


async def test_a_late_answer_is_not_taken_for_the_next_call(
    gateway: Gateway, station: ClientConnection
) -> None:
    first = _unlock(gateway, 0.3)
    late_id = (await _frame(station))[1]
    assert (await first).outcome == Outcome.TIMEOUT

    second = _unlock(gateway, 5)
    call = await _frame(station)
    assert call[2:] == ["UnlockConnector", {"connectorId": 1}] and call[1] != late_id
    await station.send(json.dumps([3, late_id, {"status": "Unlocked"}]))
    await station.send(json.dumps([3, call[1], {"status": "UnlockFailed"}]))
    reply = await second
    assert (reply.outcome, reply.status, reply.unique_id) == (
        Outcome.UNLOCK_FAILED,
        "UnlockFailed",
        call[1],
    )


async def test_calls_to_one_station_wait_their_turn(
    gateway: Gateway, station: ClientConnection
) -> None:
    first, second = _unlock(gateway, 5), _unlock(gateway, 5)
    one = await _frame(station)
    with pytest.raises(TimeoutError):  # the second CALL is not sent before the first is answered
        await asyncio.wait_for(station.recv(), 0.2)
    await station.send(json.dumps([3, one[1], {"status": "Unlocked"}]))
    two = await _frame(station)
    await station.send(json.dumps([3, two[1], {"status": "NotSupported"}]))
    assert [(await first).outcome, (await second).outcome] == [
        Outcome.ACCEPTED,
        Outcome.NOT_SUPPORTED,
    ]


async def test_a_call_error_and_an_invalid_answer_are_call_errors(
    gateway: Gateway, station: ClientConnection
) -> None:
    refused = _unlock(gateway, 5)
    call = await _frame(station)
    await station.send(json.dumps([4, call[1], "NotImplemented", "no unlocking here", {}]))
    reply = await refused
    assert (reply.outcome, reply.error_code, reply.description) == (
        Outcome.CALL_ERROR,
        "NotImplemented",
        "no unlocking here",
    )

    garbled = _unlock(gateway, 5)
    call = await _frame(station)
    await station.send(json.dumps([3, call[1], {"status": "Maybe"}]))  # not in the enum
    reply = await garbled
    # The library's code for a payload its schema refuses (it names it as OCPP 2.0.1 does).
    assert (reply.outcome, reply.error_code) == (Outcome.CALL_ERROR, "FormatViolation")


async def test_a_lost_connection_ends_the_waiting_call_at_once(
    gateway: Gateway, station: ClientConnection
) -> None:
    waiting = _unlock(gateway, 30)
    await _frame(station)
    started = time.monotonic()
    await station.close()
    reply = await waiting
    assert reply.outcome == Outcome.CONNECTION_LOST
    assert time.monotonic() - started < 5
