"""The eMSP command API as a backend uses it: keys and scopes, idempotency, the event stream and
webhooks. A scripted CPO behind it records what reaches the wire."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import httpx

from .conftest import Gateway
from .support.emsp_api import EmspApi
from .support.emsp_fixtures import (
    api_key,
    connect_to_stub,
    emsp_database_url,
    emsp_gateway,
    stub_cpo,
)
from .support.stub_cpo import StubCpo
from .support.webhook_sink import WebhookSink

__all__ = ["emsp_database_url", "emsp_gateway", "stub_cpo"]  # fixtures used below

PEER = "NL-STB"
START = {"location_id": "LOC-1", "evse_uid": "EVSE-1", "token": {"uid": "T-1"}}
UNLOCK = {"location_id": "LOC-1", "evse_uid": "EVSE-1", "connector_id": "1"}


async def _setup(stub: StubCpo, emsp: Gateway) -> None:
    stub.versions, stub.timeout = ("2.2.1",), 30
    await connect_to_stub(stub, emsp)


async def test_keys_and_scopes(stub_cpo: StubCpo, emsp_gateway: Gateway) -> None:
    await _setup(stub_cpo, emsp_gateway)
    base = emsp_gateway.base_url
    driver = EmspApi(base, await api_key(emsp_gateway, "driver"))
    other_driver = EmspApi(base, await api_key(emsp_gateway, "driver"))
    operator = EmspApi(base, await api_key(emsp_gateway, "operator"))
    reader = EmspApi(base, await api_key(emsp_gateway, "read"))

    async with httpx.AsyncClient() as client:
        keyless = await client.post(f"{base}/emsp/peers/{PEER}/commands/START_SESSION", json=START)
    assert keyless.status_code == 401
    assert (
        await EmspApi(base, "cgk_wrong").command(PEER, "START_SESSION", START)
    ).status_code == 401

    # UNLOCK_CONNECTOR is for the eMSP's operators, never sent for an EV driver (OCPI).
    refused = await driver.command(PEER, "UNLOCK_CONNECTOR", UNLOCK)
    assert refused.status_code == 403
    assert "never directly for an EV driver" in refused.json()["message"]
    assert (await reader.command(PEER, "START_SESSION", START)).status_code == 403
    assert stub_cpo.commands == []  # nothing reached the wire
    unlocked = await operator.sent(PEER, "UNLOCK_CONNECTOR", UNLOCK)
    assert stub_cpo.commands[0].path == "/ocpi/cpo/2.2.1/commands/UNLOCK_CONNECTOR"

    # A driver key sees its own commands; operator and read keys see all.
    mine = await driver.sent(PEER, "START_SESSION", START)
    assert (await other_driver.request("GET", f"/emsp/commands/{mine['id']}")).status_code == 404
    assert (await other_driver.request("GET", "/emsp/commands")).json() == []
    assert [c["id"] for c in (await driver.request("GET", "/emsp/commands")).json()] == [mine["id"]]
    everything = (await reader.request("GET", "/emsp/commands")).json()
    assert {c["id"] for c in everything} == {mine["id"], unlocked["id"]}


async def test_bad_requests_say_what_is_wrong(stub_cpo: StubCpo, emsp_gateway: Gateway) -> None:
    await _setup(stub_cpo, emsp_gateway)
    api = EmspApi(emsp_gateway.base_url, await api_key(emsp_gateway, "operator"))
    cases = {
        ("NL-STB", "START_SESSION", json.dumps({"token": {"uid": "T"}})): (400, "location_id"),
        ("NL-STB", "START_SESSION", json.dumps({**START, "location_id": "L" * 37})): (
            400,
            "OCPI 2.2.1: location_id",
        ),
        ("NL-STB", "START_SESSION", json.dumps({**START, "colour": "red"})): (400, "colour"),
        ("NL-STB", "WARP_DRIVE", "{}"): (404, "START_SESSION"),
        ("XX-NOP", "START_SESSION", json.dumps(START)): (404, "chargegate peer list"),
    }
    for (peer, command, body), (status, words) in cases.items():
        response = await api.request(
            "POST", f"/emsp/peers/{peer}/commands/{command}", content=body.encode()
        )
        assert response.status_code == status, (command, body, response.text)
        assert words in response.json()["message"], response.text
    assert stub_cpo.commands == []


async def test_one_idempotency_key_one_ocpi_command(
    stub_cpo: StubCpo, emsp_gateway: Gateway
) -> None:
    await _setup(stub_cpo, emsp_gateway)
    api = EmspApi(emsp_gateway.base_url, await api_key(emsp_gateway, "driver"))
    first = await api.command(PEER, "START_SESSION", START, idempotency_key="order-1")
    again = await api.command(PEER, "START_SESSION", START, idempotency_key="order-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    # At the same moment, five times: still one command.
    burst = await asyncio.gather(
        *(api.command(PEER, "START_SESSION", START, idempotency_key="order-2") for _ in range(5))
    )
    assert sorted(r.status_code for r in burst) == [200, 200, 200, 200, 201]
    assert len({r.json()["id"] for r in burst}) == 1
    assert len(stub_cpo.commands) == 2

    changed = await api.command(
        PEER, "START_SESSION", {**START, "evse_uid": "EVSE-2"}, idempotency_key="order-1"
    )
    assert changed.status_code == 422
    assert "different request" in changed.json()["message"]
    # Keys are per API key: another key's "order-1" is another command.
    other = EmspApi(emsp_gateway.base_url, await api_key(emsp_gateway, "driver"))
    assert (await other.command(PEER, "START_SESSION", START, "order-1")).status_code == 201
    assert len(stub_cpo.commands) == 3


async def test_event_stream_resumes_with_last_event_id(
    stub_cpo: StubCpo, emsp_gateway: Gateway
) -> None:
    await _setup(stub_cpo, emsp_gateway)
    api = EmspApi(emsp_gateway.base_url, await api_key(emsp_gateway, "operator"))
    # A listener from "now" sees the commands sent after it connected.
    connected = asyncio.Event()
    listening = asyncio.create_task(api.stream("/emsp/events", count=4, connected=connected))
    await asyncio.wait_for(connected.wait(), 10)
    first = await api.sent(PEER, "STOP_SESSION", {"session_id": "S-1"})
    second = await api.sent(PEER, "STOP_SESSION", {"session_id": "S-2"})
    seen = await asyncio.wait_for(listening, 10)
    assert [(e["command"]["id"], e["sse_event"]) for e in seen] == [
        (first["id"], "REQUESTED"),
        (first["id"], "RESPONDED"),
        (second["id"], "REQUESTED"),
        (second["id"], "RESPONDED"),
    ]
    # Reconnecting after the second event gets the third and fourth again, nothing else.
    resumed = await api.stream(
        "/emsp/events", count=2, headers={"Last-Event-ID": seen[1]["sse_id"]}
    )
    assert [e["sse_id"] for e in resumed] == [seen[2]["sse_id"], seen[3]["sse_id"]]


async def test_webhook_gets_every_change_in_order_signed_and_retried(
    stub_cpo: StubCpo, emsp_gateway: Gateway
) -> None:
    await _setup(stub_cpo, emsp_gateway)
    sink = await WebhookSink(fail_next=2).start()
    try:
        key = await api_key(emsp_gateway, "driver")
        api = EmspApi(emsp_gateway.base_url, key)
        configured = await api.request("PUT", "/emsp/webhook", json={"url": sink.url})
        assert configured.status_code == 200, configured.text
        secret = configured.json()["secret"]
        # Another key's command is not this webhook's business.
        stranger = EmspApi(emsp_gateway.base_url, await api_key(emsp_gateway, "driver"))
        await stranger.sent(PEER, "STOP_SESSION", {"session_id": "S-0"})

        sent = await api.sent(PEER, "STOP_SESSION", {"session_id": "S-1"})
        await stub_cpo.call_emsp(
            "POST", stub_cpo.commands[-1].body["response_url"], {"result": "ACCEPTED"}
        )
        hooks = await sink.wait_for(3)
        assert sink.refused == 2  # the first tries were refused and sent again
        payloads = [json.loads(h.body) for h in hooks]
        assert [p["event"] for p in payloads] == ["REQUESTED", "RESPONDED", "RESULT"]
        assert {p["command"]["id"] for p in payloads} == {sent["id"]}
        assert payloads[-1]["command"]["result"]["result"] == "ACCEPTED"
        for hook, payload in zip(hooks, payloads, strict=True):
            expected = hmac.new(secret.encode(), hook.body, hashlib.sha256).hexdigest()
            assert hook.headers["x-chargegate-signature"] == f"sha256={expected}"
            assert hook.headers["x-chargegate-event-id"] == str(payload["id"])
        # The sink has the POST before the worker commits its cursor: wait for the commit.
        state = await _webhook_state_when(
            api, lambda s: s["delivered_up_to_event"] == payloads[-1]["id"]
        )
        assert state["failed_attempts"] == 0 and state["dead_since"] is None
        assert (await api.request("DELETE", "/emsp/webhook")).status_code == 204
        assert (await api.request("GET", "/emsp/webhook")).status_code == 404
    finally:
        await sink.stop()


async def _webhook_state_when(
    api: EmspApi, condition: Callable[[dict[str, Any]], bool], timeout: float = 10.0
) -> dict[str, Any]:
    """GET /emsp/webhook until `condition` holds of it (fails after `timeout` seconds)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        state: dict[str, Any] = (await api.request("GET", "/emsp/webhook")).json()
        if condition(state):
            return state
        assert asyncio.get_running_loop().time() < deadline, state
        await asyncio.sleep(0.02)
