"""GIREVE IOP profile: GIREVE's published StartSession request and callback, sent as written;
evse_uid required; authorization_id stored and echoed in Sessions and CDRs."""

from __future__ import annotations

import json

import httpx
import pytest

from chargegate.service.stations import StationMapping
from chargegate.store.station_mapping_store import SqlStationMappingStore

from .conftest import Gateway, StationFactory
from .support.emsp import FakeEmsp
from .support.gireve import START_SESSION_REQUEST


@pytest.fixture
async def iop(gateway: Gateway, emsp: FakeEmsp, stations: StationFactory) -> FakeEmsp:
    """IOP registered with the gireve profile; a station mapped to IOP's example ids."""
    emsp.country_code, emsp.party_id = "FR", "107"
    token_a = await gateway.add_party(country_code="FR", party_id="107", profile="gireve")
    await emsp.register(gateway.base_url, token_a, "2.1.1")
    await StationMapping(SqlStationMappingStore(gateway.state.sessions)).map(
        "CP-GIR-1", location_id="12345", evses={1: "54321"}
    )
    await stations("CP-GIR-1", auto_transactions=False)
    return emsp


async def test_gireve_example_start_session_request_and_callback(
    iop: FakeEmsp, gateway: Gateway
) -> None:
    body = START_SESSION_REQUEST.replace("https://xxx.ggg.com", iop.base_url)
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{gateway.base_url}/ocpi/cpo/2.1.1/commands/START_SESSION",
            content=body.encode(),
            headers={
                "Authorization": f"Token {iop.token_c}",
                "Connection": "close",
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
        )
    # The example's response: CODE 200, Content-Type application/json, the envelope below.
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert set(answer) == {"data", "status_code", "status_message", "timestamp"}
    assert answer["data"] == {"result": "ACCEPTED"}
    assert answer["status_code"] == 1000
    assert answer["status_message"] == "Success"

    # The example's callback: POST {"result": "ACCEPTED"} with Authorization: Token <plain token>.
    [callback] = await iop.wait_for("/commands/START_SESSION/111-222")
    assert callback.method == "POST"
    assert callback.body == {"result": "ACCEPTED"}
    assert callback.headers["authorization"] == f"Token {iop.token_b}"
    assert callback.headers["content-type"] == "application/json"


async def test_authorization_id_reaches_session_and_cdr(iop: FakeEmsp, gateway: Gateway) -> None:
    body = json.loads(START_SESSION_REQUEST.replace("https://xxx.ggg.com", iop.base_url))
    async with httpx.AsyncClient() as client:
        await client.post(
            f"{gateway.base_url}/ocpi/cpo/2.1.1/commands/START_SESSION",
            json=body,
            headers={"Authorization": f"Token {iop.token_c}"},
        )
    await iop.wait_for("/111-222")
    pushed_start, pushed_stop = await _charge(iop, gateway)
    for pushed in (pushed_start, pushed_stop):
        assert pushed["authorization_id"] == "aaa-vvv"
        assert pushed["location"]["id"] == "12345"
        assert pushed["location"]["evses"][0]["uid"] == "54321"
        assert pushed["auth_id"] == "22222"
    [cdr] = await iop.wait_for("/cdrs")
    assert cdr.body["authorization_id"] == "aaa-vvv"
    assert cdr.body["location"]["id"] == "12345"


async def _charge(iop: FakeEmsp, gateway: Gateway) -> tuple[dict, dict]:
    from chargegate.sim import SimulatedStation16

    # A second socket for the same station replaces the fixture's: the gateway keeps one.
    station = SimulatedStation16("CP-GIR-1", gateway.ws_url, auto_transactions=False)
    await station.connect_and_boot()
    try:
        transaction_id = await station.start_transaction(1, "11111")
        [start] = await iop.wait_for("/sessions/")
        await station.stop_transaction(transaction_id)
        pushes = await iop.wait_for("/sessions/", count=2)
        return start.body, pushes[-1].body
    finally:
        await station.close()


async def test_gireve_start_session_without_evse_uid_is_2001(
    iop: FakeEmsp, gateway: Gateway
) -> None:
    body = json.loads(START_SESSION_REQUEST.replace("https://xxx.ggg.com", iop.base_url))
    del body["evse_uid"]
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{gateway.base_url}/ocpi/cpo/2.1.1/commands/START_SESSION",
            json=body,
            headers={"Authorization": f"Token {iop.token_c}"},
        )
    answer = response.json()
    assert response.status_code == 200
    assert answer["status_code"] == 2001
    assert "evse_uid" in answer["status_message"]


async def test_other_parties_keep_evse_uid_optional(
    gateway: Gateway, emsp: FakeEmsp, stations: StationFactory
) -> None:
    await emsp.register(gateway.base_url, await gateway.add_party(), "2.1.1")
    await stations("CP-1")
    body = json.loads(START_SESSION_REQUEST.replace("https://xxx.ggg.com", emsp.base_url))
    body["location_id"] = "CP-1"
    del body["evse_uid"]
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{gateway.base_url}/ocpi/cpo/2.1.1/commands/START_SESSION",
            json=body,
            headers={"Authorization": f"Token {emsp.token_c}"},
        )
    assert response.json()["data"] == {"result": "ACCEPTED"}
