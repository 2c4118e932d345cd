"""An eMSP driving a CPO end to end with chargegate alone: two chargegate processes (the eMSP,
and the CPO with simulated OCPP 1.6J stations behind it), every command and outcome, and the
Session and CDR arriving at the eMSP linked to the command that started them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select

from chargegate.sim import SimulatedStation16
from chargegate.store.models import ChargingSession

from .conftest import Gateway, StationFactory
from .support.emsp_api import EmspApi
from .support.emsp_fixtures import (
    api_key,
    connect_to_chargegate,
    emsp_database_url,
    emsp_gateway,
)

__all__ = ["emsp_database_url", "emsp_gateway"]  # fixtures used below

PEER = "NL-CGW"


@pytest.fixture
async def gateway(database_url: str) -> AsyncIterator[Gateway]:
    """The CPO. Its stations get 1.5 s of the 4 s it announces, so its TIMEOUT for a silent
    station reaches us well before we would call the command EXPIRED, even on a busy machine."""
    gw = await Gateway(database_url, command_timeout=4.0, command_timeout_margin=2.5).start()
    try:
        yield gw
    finally:
        await gw.stop()


@dataclass
class Pair:
    version: str
    cpo: Gateway
    emsp: Gateway
    api: EmspApi
    stations: StationFactory


@pytest.fixture(params=["2.1.1", "2.2.1"])
async def pair(
    request: pytest.FixtureRequest,
    gateway: Gateway,
    emsp_gateway: Gateway,
    stations: StationFactory,
) -> AsyncIterator[Pair]:
    await connect_to_chargegate(gateway, emsp_gateway, version=request.param)
    api = EmspApi(emsp_gateway.base_url, await api_key(emsp_gateway, "operator"))
    yield Pair(request.param, gateway, emsp_gateway, api, stations)


def token(uid: str = "TOKEN-001") -> dict[str, Any]:
    return {"uid": uid, "type": "RFID", "contract_id": "NL-EMS-C00000001"}


def start(location: str, evse: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"location_id": location, "token": token()}
    if evse:
        body["evse_uid"] = evse
    return body


def reserve(location: str, evse: str, reservation_id: str) -> dict[str, Any]:
    return {
        "location_id": location,
        "evse_uid": evse,
        "token": token(),
        "reservation_id": reservation_id,
        "expiry_date": "2099-01-01T00:00:00Z",
    }


def unlock(location: str, evse: str) -> dict[str, Any]:
    return {"location_id": location, "evse_uid": evse, "connector_id": "1"}


async def final(api: EmspApi, command_id: str, timeout: float = 10.0) -> dict[str, Any]:
    return await api.wait_for(command_id, lambda v: v["final"], timeout)


async def test_start_and_stop_with_session_and_cdr_linked_to_the_start(pair: Pair) -> None:
    await pair.stations("CP-1")
    started = await pair.api.sent(PEER, "START_SESSION", start("CP-1", "CP-1-1"))
    assert started["response"]["result"] == "ACCEPTED"
    assert started["response"]["timeout"] == (4 if pair.version == "2.2.1" else None)

    # The command's own stream, from its start: each change once, in order, then it ends. The
    # CPO's Session push and its CommandResult are separate requests OCPI does not order, and
    # the station starts charging at once: the Session may come first (seen on a loaded CI).
    stream = await pair.api.events(started["id"])
    kinds = [e["sse_event"] for e in stream]
    changes = [e for e in stream if e["sse_event"] != "SESSION"]
    assert [e["sse_event"] for e in changes] == ["REQUESTED", "RESPONDED", "RESULT"], kinds
    assert [e["command"]["state"] for e in changes] == ["REQUESTED", "RESPONDED", "RESULT"]
    assert kinds[-1] == "RESULT", kinds
    assert stream[-1]["command"]["result"]["result"] == "ACCEPTED"

    # The station plugs in and starts: the CPO pushes the Session, which finds the command.
    active = await pair.api.wait_for(
        started["id"], lambda v: (v["session"] or {}).get("status") == "ACTIVE"
    )
    session_id = active["session"]["id"]
    assert (active["session"]["country_code"], active["session"]["party_id"]) == ("NL", "CGW")
    if pair.version == "2.2.1":
        # Linked by the authorization_reference we generated, sent, and the CPO echoed.
        reference = active["authorization_reference"]
        assert reference and active["sent"]["authorization_reference"] == reference
        async with pair.cpo.state.sessions() as s:
            cpo_session = await s.scalar(
                select(ChargingSession).where(ChargingSession.id == session_id)
            )
        assert cpo_session is not None and cpo_session.authorization_reference == reference
    else:
        # Plain 2.1.1 has no authorization_id: linked by token and location instead.
        assert "authorization_id" not in active["sent"]

    stopped = await pair.api.sent(PEER, "STOP_SESSION", {"session_id": session_id})
    stopped = await final(pair.api, stopped["id"])
    assert (stopped["state"], stopped["result"]["result"]) == ("RESULT", "ACCEPTED")

    done = await pair.api.wait_for(
        started["id"],
        lambda v: (v["session"] or {}).get("status") == "COMPLETED" and v["cdr"] is not None,
    )
    assert done["cdr"]["id"] == session_id
    assert done["cdr"]["total_energy"] > 0

    sessions = await pair.api.request("GET", "/emsp/sessions", params={"command_id": done["id"]})
    [session] = sessions.json()
    assert session["object"]["status"] == "COMPLETED"
    cdrs = (await pair.api.request("GET", "/emsp/cdrs", params={"command_id": done["id"]})).json()
    assert [c["id"] for c in cdrs] == [session_id]

    # Every change, the Session and CDR included, also went out on the key's event stream.
    everything = await asyncio.wait_for(
        pair.api.stream("/emsp/events?after=0", until=lambda e: e["sse_event"] == "CDR"), 10
    )
    kinds = [e["sse_event"] for e in everything if e["command"]["id"] == started["id"]]
    changes = [kind for kind in kinds if kind not in ("SESSION", "CDR")]
    assert changes == ["REQUESTED", "RESPONDED", "RESULT"], kinds
    assert "SESSION" in kinds and kinds[-1] == "CDR"
    assert [int(e["sse_id"]) for e in everything] == sorted(int(e["sse_id"]) for e in everything)


@dataclass(frozen=True)
class Outcome:
    """A command to a station scripted to answer `script`, and the state, the CPO's answer and
    the CommandResult per OCPI version it must end with; `body` builds the command's body for
    a station id."""

    what: str
    command: str
    body: Callable[[str], dict[str, Any]]
    results: tuple[str | None, str | None]  # in 2.1.1, in 2.2.1
    script: dict[str, str] = field(default_factory=dict)
    state: str = "RESULT"
    answer: str = "ACCEPTED"

    def result(self, version: str) -> str | None:
        return self.results[0] if version == "2.1.1" else self.results[1]


def _start(station_id: str) -> dict[str, Any]:
    return start(station_id, f"{station_id}-1")


def _unlock(station_id: str) -> dict[str, Any]:
    return unlock(station_id, f"{station_id}-1")


START, UNLOCK = "START_SESSION", "UNLOCK_CONNECTOR"
# CommandResults the same in both versions.
ACCEPTED, REJECTED, NOT_SUPPORTED = ("ACCEPTED",) * 2, ("REJECTED",) * 2, ("NOT_SUPPORTED",) * 2
OUTCOMES = [
    Outcome("start accepted", START, _start, ACCEPTED),
    Outcome(
        "start refused by the station",
        START,
        _start,
        REJECTED,
        {"RemoteStartTransaction": "reject"},
    ),
    Outcome(
        "start on a station that does not implement it",
        START,
        _start,
        NOT_SUPPORTED,
        {"RemoteStartTransaction": "not_implemented"},
    ),
    Outcome(
        "start on a silent station",
        START,
        _start,
        ("TIMEOUT", "TIMEOUT"),
        {"RemoteStartTransaction": "silent"},
    ),
    Outcome(
        "start at an unknown location",
        START,
        lambda st: start("NOWHERE", "NOWHERE-1"),
        (None, None),
        state="RESPONDED",
        answer="REJECTED",
    ),
    Outcome(
        "stop of an unknown session",
        "STOP_SESSION",
        lambda st: {"session_id": "no-such-session"},
        (None, None),
        state="RESPONDED",
        answer="UNKNOWN_SESSION",
    ),
    Outcome("reservation", "RESERVE_NOW", lambda st: reserve(st, f"{st}-1", "71"), ACCEPTED),
    Outcome(
        "reservation of an occupied EVSE",
        "RESERVE_NOW",
        lambda st: reserve(st, f"{st}-1", "72"),
        ("REJECTED", "EVSE_OCCUPIED"),
        {"ReserveNow": "occupied"},
    ),
    Outcome("unlock", UNLOCK, _unlock, ACCEPTED),
    Outcome(
        "unlock that fails",
        UNLOCK,
        _unlock,
        ("REJECTED", "FAILED"),
        {"UnlockConnector": "unlock_failed"},
    ),
]


async def test_every_command_and_outcome(pair: Pair) -> None:
    """All cases at once, each on its own station, so the slow one (a silent station: the
    CPO's TIMEOUT) sets the pace."""

    async def run(index: int, case: Outcome) -> dict[str, Any]:
        station: SimulatedStation16 = await pair.stations(
            f"CP-{index}", connectors=1, auto_transactions=False
        )
        for action, behaviour in case.script.items():
            station.script.set(action, behaviour)
        sent = await pair.api.sent(PEER, case.command, case.body(f"CP-{index}"))
        return await final(pair.api, sent["id"])

    views = await asyncio.gather(*(run(i, case) for i, case in enumerate(OUTCOMES)))
    for view, case in zip(views, OUTCOMES, strict=True):
        got = (view["state"], view["response"]["result"], (view["result"] or {}).get("result"))
        assert got == (case.state, case.answer, case.result(pair.version)), (case.what, view)
        if case.what == "start at an unknown location":
            assert view["response"]["status_code"] == 2003
            assert view["final"] and view["expires_at"] is None


async def test_221_reservation_cancelled(
    gateway: Gateway, emsp_gateway: Gateway, stations: StationFactory
) -> None:
    await connect_to_chargegate(gateway, emsp_gateway, version="2.2.1")
    api = EmspApi(emsp_gateway.base_url, await api_key(emsp_gateway, "driver"))
    await stations("CP-1", connectors=1, auto_transactions=False)
    reserved = await final(
        api, (await api.sent(PEER, "RESERVE_NOW", reserve("CP-1", "CP-1-1", "R-1")))["id"]
    )
    assert reserved["result"]["result"] == "ACCEPTED"
    cancelled = await api.sent(PEER, "CANCEL_RESERVATION", {"reservation_id": "R-1"})
    assert (await final(api, cancelled["id"]))["result"]["result"] == "ACCEPTED"
    unknown = await api.sent(PEER, "CANCEL_RESERVATION", {"reservation_id": "R-404"})
    unknown = await final(api, unknown["id"])
    assert (unknown["response"]["result"], unknown["result"]["result"]) == (
        "ACCEPTED",
        "UNKNOWN_RESERVATION",
    )


async def test_211_has_no_cancel_reservation(gateway: Gateway, emsp_gateway: Gateway) -> None:
    await connect_to_chargegate(gateway, emsp_gateway, version="2.1.1")
    api = EmspApi(emsp_gateway.base_url, await api_key(emsp_gateway, "operator"))
    response = await api.command(PEER, "CANCEL_RESERVATION", {"reservation_id": "1"})
    assert response.status_code == 400
    assert response.json()["message"] == (
        "OCPI 2.1.1 has no CANCEL_RESERVATION; the peer speaks 2.1.1"
    )
