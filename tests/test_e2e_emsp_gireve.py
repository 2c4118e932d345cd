"""GIREVE IOP, eMSP side: GIREVE's example START_SESSION sent through our eMSP API must
reach the wire as GIREVE documents it, the example callback must get GIREVE's answer, evse_uid is
required, and `authorization_id` ties the Sessions and CDRs that come back to the command."""

from __future__ import annotations

import json
import re
from typing import Any

from .conftest import Gateway
from .support import gireve
from .support.emsp_api import EmspApi
from .support.emsp_fixtures import (
    api_key,
    connect_to_stub,
    emsp_database_url,
    emsp_gateway,
    stub_cpo,
)
from .support.stub_cpo import StubCpo

__all__ = ["emsp_database_url", "emsp_gateway", "stub_cpo"]  # fixtures used below

# GIREVE's StartSession example, the request body as GIREVE prints it.
GIREVE_REQUEST = json.loads(gireve.START_SESSION_REQUEST)
# GIREVE's callback example, the body byte for byte.
GIREVE_CALLBACK = b"""{
    "result": "ACCEPTED"
}"""
PEER = "NL-STB"


def api_body_of_example() -> dict[str, Any]:
    """What an eMSP backend posts to our API to send GIREVE's example command."""
    body = {k: v for k, v in GIREVE_REQUEST.items() if k != "response_url"}
    body["authorization_reference"] = body.pop("authorization_id")
    return body


async def _iop(stub: StubCpo, emsp: Gateway) -> EmspApi:
    stub.versions = ("2.1.1",)
    await connect_to_stub(stub, emsp, profile="gireve")
    return EmspApi(emsp.base_url, await api_key(emsp, "driver"))


async def test_gireve_example_on_the_wire_and_callback_answer(
    stub_cpo: StubCpo, emsp_gateway: Gateway
) -> None:
    api = await _iop(stub_cpo, emsp_gateway)
    sent = await api.sent(PEER, "START_SESSION", api_body_of_example())
    assert sent["response"]["result"] == "ACCEPTED"

    [wire] = stub_cpo.commands
    assert (wire.method, wire.path) == ("POST", "/ocpi/cpo/2.1.1/commands/START_SESSION")
    # The example's headers: Authorization: Token <plain token> (2.1.1), Accept and
    # Content-Type JSON.
    assert wire.headers["authorization"] == f"Token {stub_cpo.token_c}"
    assert wire.headers["accept"] == "application/json"
    assert wire.headers["content-type"] == "application/json"
    # Exactly the example's fields and values, our own response_url aside.
    assert {**wire.body, "response_url": GIREVE_REQUEST["response_url"]} == GIREVE_REQUEST
    assert re.fullmatch(
        rf"{emsp_gateway.base_url}/ocpi/emsp/2\.1\.1/commands/START_SESSION/[A-Za-z0-9_-]{{32}}",
        wire.body["response_url"],
    )

    # The example callback, as GIREVE sends it, and GIREVE's expected answer.
    answer = await stub_cpo.call_emsp("POST", wire.body["response_url"], content=GIREVE_CALLBACK)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert set(body) == {"data", "status_code", "status_message", "timestamp"}
    assert (body["data"], body["status_code"], body["status_message"]) == ({}, 1000, "Success")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z", body["timestamp"])
    view = await api.get(sent["id"])
    assert (view["state"], view["result"]["result"]) == ("RESULT", "ACCEPTED")


async def test_iop_needs_evse_uid_and_takes_start_and_stop_only(
    stub_cpo: StubCpo, emsp_gateway: Gateway
) -> None:
    api = await _iop(stub_cpo, emsp_gateway)
    body = api_body_of_example()
    del body["evse_uid"]
    refused = await api.command(PEER, "START_SESSION", body)
    assert refused.status_code == 400
    assert "evse_uid is required: GIREVE IOP" in refused.json()["message"]
    reserve = {
        "location_id": "12345",
        "evse_uid": "54321",
        "token": {"uid": "11111"},
        "reservation_id": "5",
        "expiry_date": "2099-01-01T00:00:00Z",
    }
    not_iop = await api.command(PEER, "RESERVE_NOW", reserve)
    assert not_iop.status_code == 400
    assert "GIREVE IOP does not implement RESERVE_NOW" in not_iop.json()["message"]
    assert stub_cpo.commands == []


async def test_authorization_id_is_made_and_links_session_and_cdr(
    stub_cpo: StubCpo, emsp_gateway: Gateway
) -> None:
    api = await _iop(stub_cpo, emsp_gateway)
    body = api_body_of_example()
    del body["authorization_reference"]
    first = await api.sent(PEER, "START_SESSION", body)
    second = await api.sent(PEER, "START_SESSION", body)
    made = [c.body["authorization_id"] for c in stub_cpo.commands]
    # One per START_SESSION, within 2.2.1's authorization_reference limit (CiString(36)).
    assert made == [first["authorization_reference"], second["authorization_reference"]]
    assert made[0] != made[1] and all(len(m) <= 36 for m in made)

    # GIREVE's cpo_sessions example shape: the CPO's session, top-level authorization_id.
    sessions = stub_cpo.emsp_endpoints["sessions"]
    session = {
        "id": "SESSION-1",
        "start_datetime": "2026-01-01T10:00:00Z",
        "kwh": 0,
        "auth_id": "22222",
        "auth_method": "AUTH_REQUEST",
        "authorization_id": made[1],
        "location": {"id": "12345", "evses": [{"uid": "54321"}]},
        "currency": "EUR",
        "status": "ACTIVE",
        "last_updated": "2026-01-01T10:00:00Z",
    }
    put = await stub_cpo.call_emsp("PUT", f"{sessions}/FR/ABC/SESSION-1", session)
    assert put.json()["status_code"] == 1000, put.text
    patched = await stub_cpo.call_emsp(
        "PATCH",
        f"{sessions}/FR/ABC/SESSION-1",
        {"kwh": 7.5, "status": "COMPLETED", "last_updated": "2026-01-01T11:00:00Z"},
    )
    assert patched.json()["status_code"] == 1000, patched.text
    held = await stub_cpo.call_emsp("GET", f"{sessions}/FR/ABC/SESSION-1")
    assert (held.json()["data"]["kwh"], held.json()["data"]["auth_id"]) == (7.5, "22222")

    cdr = {
        "id": "CDR-1",
        "start_date_time": "2026-01-01T10:00:00Z",
        "stop_date_time": "2026-01-01T11:00:00Z",
        "auth_id": "22222",
        "auth_method": "AUTH_REQUEST",
        "authorization_id": made[1],
        "location": {"id": "12345"},
        "currency": "EUR",
        "total_cost": 2.5,
        "total_energy": 7.5,
        "total_time": 1.0,
        "last_updated": "2026-01-01T11:00:00Z",
    }
    posted = await stub_cpo.call_emsp("POST", stub_cpo.emsp_endpoints["cdrs"], cdr)
    assert posted.json()["status_code"] == 1000, posted.text
    location = posted.headers["location"]
    assert (await stub_cpo.call_emsp("GET", location)).json()["data"]["id"] == "CDR-1"
    # The same CDR again (a retry) is the same CDR.
    repeat = await stub_cpo.call_emsp("POST", stub_cpo.emsp_endpoints["cdrs"], cdr)
    assert repeat.headers["location"] == location

    view = await api.get(second["id"])
    assert view["session"] == {
        "id": "SESSION-1",
        "country_code": "FR",
        "party_id": "ABC",
        "status": "COMPLETED",
        "kwh": 7.5,
        "last_updated": "2026-01-01T11:00:00Z",
    }
    assert view["cdr"] == {"id": "CDR-1", "total_energy": 7.5, "total_cost": 2.5}
    assert (await api.get(first["id"]))["session"] is None
    kinds = [e["sse_event"] for e in await api.stream("/emsp/events?after=0", count=7)]
    assert kinds[-3:] == ["SESSION", "SESSION", "CDR"]


async def test_session_receiver_refuses_what_it_cannot_store(
    stub_cpo: StubCpo, emsp_gateway: Gateway
) -> None:
    await _iop(stub_cpo, emsp_gateway)
    sessions = stub_cpo.emsp_endpoints["sessions"]
    mismatch = await stub_cpo.call_emsp("PUT", f"{sessions}/FR/ABC/S-1", {"id": "S-2"})
    assert mismatch.json()["status_code"] == 2001
    assert "differs from the URL" in mismatch.json()["status_message"]
    unknown = await stub_cpo.call_emsp("PATCH", f"{sessions}/FR/ABC/S-9", {"kwh": 1})
    assert unknown.status_code == 404
    nameless = await stub_cpo.call_emsp("POST", stub_cpo.emsp_endpoints["cdrs"], {"total_cost": 1})
    assert nameless.json()["status_code"] == 2001
