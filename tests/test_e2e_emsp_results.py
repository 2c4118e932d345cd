"""What comes back to our eMSP role: results at the response_urls we generate (lenient about
the 2.1.1 forms, strict about which URL), EXPIRED when the CPO's timeout passes in silence, and
the one result-first race a fast CPO produces."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from .conftest import Gateway
from .support.emsp_api import EmspApi
from .support.emsp_fixtures import (
    EMSP_SETTINGS,
    api_key,
    connect_to_stub,
    emsp_database_url,
    stub_cpo,
)
from .support.stub_cpo import StubCpo

__all__ = ["emsp_database_url", "stub_cpo"]  # fixtures used below

PEER = "NL-STB"
STOP = {"session_id": "S-1"}


@pytest.fixture
async def emsp(emsp_database_url: str) -> AsyncIterator[Gateway]:
    """The eMSP, waiting only 1 s for a 2.1.1 result (2.1.1 CPOs announce no timeout)."""
    gw = await Gateway(
        emsp_database_url, **{**EMSP_SETTINGS, "emsp_default_result_timeout": 1.0}
    ).start()
    try:
        yield gw
    finally:
        await gw.stop()


async def _connected(stub: StubCpo, emsp: Gateway, version: str) -> EmspApi:
    stub.versions = (version,)
    await connect_to_stub(stub, emsp)
    return EmspApi(emsp.base_url, await api_key(emsp, "operator"))


@pytest.mark.parametrize("version", ["2.1.1", "2.2.1"])
async def test_expired_when_the_cpo_accepts_and_stays_silent(
    stub_cpo: StubCpo, emsp: Gateway, version: str
) -> None:
    api = await _connected(stub_cpo, emsp, version)
    loop = asyncio.get_running_loop()
    before = loop.time()  # the CPO answers after this, so the deadline is 1 s after it or later
    sent = await api.sent(PEER, "STOP_SESSION", STOP)
    assert sent["state"] == "RESPONDED" and not sent["final"]
    # 2.2.1: the CPO announced timeout 1; 2.1.1: our configured 1 s.
    assert sent["response"]["timeout"] == (1 if version == "2.2.1" else None)
    await asyncio.sleep(0.6)
    view = await api.get(sent["id"])
    if loop.time() - before < 1.0:  # else a loaded machine took us past the deadline
        assert view["state"] == "RESPONDED"  # not before the timeout
    expired = await api.wait_for(sent["id"], lambda v: v["state"] == "EXPIRED", timeout=3)
    assert expired["final"] and expired["result"] is None
    stream = await api.events(sent["id"])
    assert [e["sse_event"] for e in stream] == ["REQUESTED", "RESPONDED", "EXPIRED"]

    # A result after that is taken (the CPO did answer), shown as late; the state stays.
    late = await stub_cpo.call_emsp(
        "POST", stub_cpo.commands[0].body["response_url"], {"result": "ACCEPTED"}
    )
    assert late.json()["status_code"] == 1000
    view = await api.get(sent["id"])
    assert view["state"] == "EXPIRED"
    assert (view["result"]["result"], view["result"]["late"]) == ("ACCEPTED", True)
    kinds = [e["sse_event"] for e in await api.stream("/emsp/events?after=0", count=4)]
    assert kinds == ["REQUESTED", "RESPONDED", "EXPIRED", "LATE_RESULT"]


async def test_result_receiver_takes_221_command_result(stub_cpo: StubCpo, emsp: Gateway) -> None:
    api = await _connected(stub_cpo, emsp, "2.2.1")
    sent = await api.sent(PEER, "STOP_SESSION", STOP)
    url = stub_cpo.commands[0].body["response_url"]
    assert re.fullmatch(
        rf"{emsp.base_url}/ocpi/emsp/2\.2\.1/commands/STOP_SESSION/[A-Za-z0-9_-]{{32}}", url
    )
    answer = await stub_cpo.call_emsp(
        "POST", url, {"result": "FAILED", "message": [{"language": "en", "text": "cable stuck"}]}
    )
    body = answer.json()
    assert answer.status_code == 200
    assert (body["data"], body["status_code"], body["status_message"]) == ({}, 1000, "Success")
    # 2.2.1 answers carry the routing headers back to the CPO.
    assert answer.headers["ocpi-to-party-id"] == "STB"
    assert answer.headers["ocpi-from-party-id"] == "EMS"
    view = await api.get(sent["id"])
    assert (view["state"], view["result"]["result"]) == ("RESULT", "FAILED")
    assert view["result"]["message"] == "cable stuck"

    # The CPO's delivery retries the same result: taken once, no second event.
    again = await stub_cpo.call_emsp("POST", url, {"result": "FAILED"})
    assert again.json()["status_code"] == 1000
    # A different second result is not taken: one command, one outcome.
    other = await stub_cpo.call_emsp("POST", url, {"result": "ACCEPTED"})
    assert other.json()["status_code"] == 1000
    assert "FAILED is already recorded" in other.json()["status_message"]
    assert (await api.get(sent["id"]))["result"]["result"] == "FAILED"
    kinds = [e["sse_event"] for e in await api.events(sent["id"])]
    assert kinds == ["REQUESTED", "RESPONDED", "RESULT"]


@pytest.mark.parametrize(
    "raw",
    [b'"REJECTED"', b"REJECTED", b'{"data": "REJECTED"}', b'{"data": {"result": "REJECTED"}}'],
    ids=["json-string", "bare-word", "bare-enum-in-data", "object-in-data"],
)
async def test_result_receiver_reads_211_bare_enums(
    stub_cpo: StubCpo, emsp: Gateway, raw: bytes
) -> None:
    api = await _connected(stub_cpo, emsp, "2.1.1")
    sent = await api.sent(PEER, "STOP_SESSION", STOP)
    url = stub_cpo.commands[0].body["response_url"]
    answer = await stub_cpo.call_emsp("POST", url, content=raw)
    assert answer.json()["status_code"] == 1000, answer.text
    assert (await api.get(sent["id"]))["result"]["result"] == "REJECTED"


async def test_result_urls_are_bound_to_one_command_and_peer(
    stub_cpo: StubCpo, emsp: Gateway
) -> None:
    api = await _connected(stub_cpo, emsp, "2.2.1")
    other = await StubCpo(party_id="OTH").start()
    try:
        await connect_to_stub(other, emsp)
        sent = await api.sent(PEER, "STOP_SESSION", STOP)
        url = stub_cpo.commands[0].body["response_url"]
        base = url.rpartition("/")[0]
        tries = {
            "unknown reference": await stub_cpo.call_emsp(
                "POST", f"{base}/{'x' * 32}", {"result": "ACCEPTED"}
            ),
            "another command's name": await stub_cpo.call_emsp(
                "POST", url.replace("STOP_SESSION", "START_SESSION"), {"result": "ACCEPTED"}
            ),
            "another version": await stub_cpo.call_emsp(
                "POST", url.replace("/2.2.1/", "/2.1.1/"), {"result": "ACCEPTED"}
            ),
            "another peer's token": await other.call_emsp("POST", url, {"result": "ACCEPTED"}),
        }
        for what, response in tries.items():
            assert response.status_code == 404, what
            assert response.json()["status_code"] == 2000, what
        no_token = await stub_cpo.call_emsp("POST", url, {"result": "ACCEPTED"}, token="wrong")
        assert no_token.status_code == 401
        invalid = await stub_cpo.call_emsp("POST", url, {"result": "MAYBE"})
        assert invalid.json()["status_code"] == 2001
        assert "MAYBE" in invalid.json()["status_message"]
        not_json = await stub_cpo.call_emsp("POST", url, content=b"{nope")
        assert not_json.status_code == 400
        assert (await api.get(sent["id"]))["state"] == "RESPONDED"  # none of those counted
    finally:
        await other.stop()


async def test_a_result_before_the_cpo_answer_is_told_in_order(
    stub_cpo: StubCpo, emsp: Gateway
) -> None:
    api = await _connected(stub_cpo, emsp, "2.2.1")
    stub_cpo.result_first = {"result": "ACCEPTED"}
    sent = await api.sent(PEER, "STOP_SESSION", STOP)
    assert (sent["state"], sent["final"]) == ("RESULT", True)
    assert sent["response"]["result"] == "ACCEPTED"
    stream = await api.events(sent["id"])
    assert [(e["sse_event"], e["command"]["state"]) for e in stream] == [
        ("REQUESTED", "REQUESTED"),
        ("RESPONDED", "RESPONDED"),
        ("RESULT", "RESULT"),
    ]


async def test_a_221_reservation_cancelled_by_the_cpo(stub_cpo: StubCpo, emsp: Gateway) -> None:
    api = await _connected(stub_cpo, emsp, "2.2.1")
    body: dict[str, Any] = {
        "location_id": "LOC-1",
        "evse_uid": "EVSE-1",
        "reservation_id": "R-9",
        "expiry_date": "2099-01-01T00:00:00Z",
        "token": {"uid": "T-1"},
    }
    sent = await api.sent(PEER, "RESERVE_NOW", body)
    url = stub_cpo.commands[0].body["response_url"]
    await stub_cpo.call_emsp("POST", url, {"result": "ACCEPTED"})
    # The same URL, again: the CPO cancels the reservation (2.2.1 CANCELED_RESERVATION).
    await stub_cpo.call_emsp("POST", url, {"result": "CANCELED_RESERVATION"})
    view = await api.get(sent["id"])
    assert view["result"]["result"] == "CANCELED_RESERVATION"
    kinds = [e["sse_event"] for e in await api.stream("/emsp/events?after=0", count=4)]
    assert kinds == ["REQUESTED", "RESPONDED", "RESULT", "RESULT"]


async def test_a_cpo_error_answer_is_final_and_an_unreachable_cpo_fails(
    stub_cpo: StubCpo, emsp: Gateway
) -> None:
    api = await _connected(stub_cpo, emsp, "2.2.1")
    stub_cpo.answer, stub_cpo.answer_status = {"result": "REJECTED"}, 2003
    refused = await api.sent(PEER, "STOP_SESSION", STOP)
    assert (refused["state"], refused["final"]) == ("RESPONDED", True)
    assert (refused["response"]["status_code"], refused["response"]["result"]) == (2003, "REJECTED")
    await stub_cpo.stop()
    failed = await api.sent(PEER, "STOP_SESSION", STOP)
    assert (failed["state"], failed["final"]) == ("FAILED", True)
    assert "/ocpi/cpo/2.2.1/commands/STOP_SESSION failed: ConnectError" in failed["failure"]


async def test_final_means_final_an_unreadable_success_waits_for_the_result(
    stub_cpo: StubCpo, emsp_database_url: str
) -> None:
    """README, GET /emsp/commands: `final` says nothing more will change. A CPO answering
    1000 with a CommandResponse we cannot read took the command: it stays open (not FAILED)
    until its result comes, and the command's stream ends only there."""
    settings = {**EMSP_SETTINGS, "emsp_default_result_timeout": 30.0}
    gw = await Gateway(emsp_database_url, **settings).start()
    try:
        api = await _connected(stub_cpo, gw, "2.2.1")
        stub_cpo.answer = {"resu1t": "ACCEPTED?"}  # status_code 1000, nothing we can read
        sent = await api.sent(PEER, "STOP_SESSION", STOP)
        assert (sent["state"], sent["final"]) == ("RESPONDED", False)
        assert sent["response"]["status_code"] == 1000 and sent["response"]["result"] is None
        following = asyncio.ensure_future(api.events(sent["id"]))
        url = stub_cpo.commands[0].body["response_url"]
        posted = await stub_cpo.call_emsp("POST", url, {"result": "ACCEPTED"})
        assert posted.json()["status_code"] == 1000
        stream = await following
        assert [(e["sse_event"], e["command"]["state"], e["command"]["final"]) for e in stream] == [
            ("REQUESTED", "REQUESTED", False),
            ("RESPONDED", "RESPONDED", False),
            ("RESULT", "RESULT", True),
        ]
        # Final: another result is not taken, and the command stays as it was told.
        again = await stub_cpo.call_emsp("POST", url, {"result": "FAILED"})
        assert "already recorded" in str(again.json().get("status_message"))
        view = await api.get(sent["id"])
        assert (view["state"], view["final"], view["result"]["result"]) == (
            "RESULT",
            True,
            "ACCEPTED",
        )
    finally:
        await gw.stop()
