"""Versions, version details and the credentials handshake, both OCPI versions."""

from __future__ import annotations

import httpx
import pytest

from chargegate.ocpi.credentials import UNUSABLE_API

from .conftest import Gateway
from .support.emsp import FakeEmsp, auth_header


@pytest.mark.parametrize("version", ["2.1.1", "2.2.1"])
async def test_handshake_voids_token_a_and_token_c_works(
    gateway: Gateway, emsp: FakeEmsp, version: str
) -> None:
    token_a = await gateway.add_party()
    token_c = await emsp.register(gateway.base_url, token_a, version)
    assert token_c != token_a
    async with httpx.AsyncClient() as client:
        with_a = await client.get(
            f"{gateway.base_url}/ocpi/versions",
            headers={"Authorization": auth_header(version, token_a)},
        )
        with_c = await client.get(
            f"{gateway.base_url}/ocpi/{version}/credentials", headers=emsp.headers()
        )
    assert with_a.status_code == 401
    assert with_c.status_code == 200
    ours = with_c.json()["data"]
    assert ours["token"] == token_c
    assert ours["url"] == f"{gateway.base_url}/ocpi/versions"
    if version == "2.1.1":
        assert (ours["country_code"], ours["party_id"]) == ("NL", "CGW")
    else:
        assert ours["roles"][0] == {
            "role": "CPO",
            "business_details": {"name": "chargegate CPO"},
            "party_id": "CGW",
            "country_code": "NL",
        }
    [party] = await gateway.state.parties.all()
    assert party.state == "REGISTERED"
    assert party.ocpi_version == version
    assert party.token_b == emsp.token_b
    # 2.2.1: only the peer's RECEIVER interfaces are ours to call; its commands are a SENDER.
    assert ("commands" in party.endpoints) == (version == "2.1.1")
    assert party.endpoints["sessions"].endswith(f"/ocpi/emsp/{version}/sessions")


async def test_221_accepts_a_plain_token_too(gateway: Gateway, emsp: FakeEmsp) -> None:
    await emsp.register(gateway.base_url, await gateway.add_party(), "2.2.1")
    assert emsp.token_c is not None
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"{gateway.base_url}/ocpi/2.2.1/credentials",
            headers={"Authorization": f"Token {emsp.token_c}"},
        )
    assert response.status_code == 200


async def test_versions_and_details(gateway: Gateway) -> None:
    token_a = await gateway.add_party()
    headers = {"Authorization": f"Token {token_a}", "X-Request-ID": "r1"}
    async with httpx.AsyncClient() as client:
        versions = await client.get(f"{gateway.base_url}/ocpi/versions", headers=headers)
        d221 = await client.get(f"{gateway.base_url}/ocpi/2.2.1", headers=headers)
        d211 = await client.get(f"{gateway.base_url}/ocpi/2.1.1", headers=headers)
        unknown = await client.get(f"{gateway.base_url}/ocpi/2.0", headers=headers)
    assert versions.headers["X-Request-ID"] == "r1"
    assert "X-Correlation-ID" in versions.headers
    assert {v["version"] for v in versions.json()["data"]} == {"2.1.1", "2.2.1"}
    endpoints = {e["identifier"]: e for e in d221.json()["data"]["endpoints"]}
    assert endpoints["commands"]["role"] == "RECEIVER"
    assert endpoints["locations"]["role"] == "SENDER"
    assert endpoints["commands"]["url"] == f"{gateway.base_url}/ocpi/cpo/2.2.1/commands"
    assert all("role" not in e for e in d211.json()["data"]["endpoints"])
    assert unknown.json()["status_code"] == 3002


async def test_post_twice_is_405_and_put_renews_token_c(gateway: Gateway, emsp: FakeEmsp) -> None:
    await emsp.register(gateway.base_url, await gateway.add_party(), "2.2.1")
    old_c = emsp.token_c
    creds = {
        "token": emsp.token_b,
        "url": f"{emsp.base_url}/ocpi/versions",
        "roles": [
            {
                "role": "EMSP",
                "business_details": {"name": "x"},
                "party_id": "EMS",
                "country_code": "NL",
            }
        ],
    }
    async with httpx.AsyncClient() as client:
        again = await client.post(
            f"{gateway.base_url}/ocpi/2.2.1/credentials", json=creds, headers=emsp.headers()
        )
        put = await client.put(
            f"{gateway.base_url}/ocpi/2.2.1/credentials", json=creds, headers=emsp.headers()
        )
        new_c = put.json()["data"]["token"]
        with_old = await client.get(
            f"{gateway.base_url}/ocpi/2.2.1/credentials", headers=emsp.headers()
        )
        emsp.token_c = new_c
        delete = await client.delete(
            f"{gateway.base_url}/ocpi/2.2.1/credentials", headers=emsp.headers()
        )
        after = await client.get(f"{gateway.base_url}/ocpi/versions", headers=emsp.headers())
    assert again.status_code == 405
    assert put.status_code == 200 and new_c != old_c
    assert with_old.status_code == 401
    assert delete.status_code == 200 and delete.json()["status_code"] == 1000
    assert after.status_code == 401


async def test_put_and_delete_before_registration_are_405(gateway: Gateway) -> None:
    token_a = await gateway.add_party()
    headers = {"Authorization": f"Token {token_a}"}
    async with httpx.AsyncClient() as client:
        put = await client.put(
            f"{gateway.base_url}/ocpi/2.1.1/credentials", json={}, headers=headers
        )
        delete = await client.delete(f"{gateway.base_url}/ocpi/2.1.1/credentials", headers=headers)
    assert (put.status_code, delete.status_code) == (405, 405)


async def test_unreachable_peer_api_is_3001_and_token_a_stays_valid(gateway: Gateway) -> None:
    token_a = await gateway.add_party()
    creds = {
        "token": "B",
        "url": "http://127.0.0.1:9/ocpi/versions",
        "business_details": {"name": "x"},
        "party_id": "EMS",
        "country_code": "NL",
    }
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{gateway.base_url}/ocpi/2.1.1/credentials",
            json=creds,
            headers={"Authorization": f"Token {token_a}"},
        )
        retry = await client.get(
            f"{gateway.base_url}/ocpi/versions", headers={"Authorization": f"Token {token_a}"}
        )
    assert response.json()["status_code"] == 3001
    # One message whatever failed: the detail would make the handshake a port scanner.
    assert response.json()["status_message"] == UNUSABLE_API
    assert retry.status_code == 200


async def test_credentials_for_another_party_are_refused(gateway: Gateway, emsp: FakeEmsp) -> None:
    token_a = await gateway.add_party(party_id="ABC")
    emsp.party_id = "XYZ"
    with pytest.raises(AssertionError, match="2001"):
        await emsp.register(gateway.base_url, token_a, "2.1.1")


async def test_credentials_missing_field_is_2001(gateway: Gateway) -> None:
    token_a = await gateway.add_party()
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{gateway.base_url}/ocpi/2.2.1/credentials",
            json={"token": "B"},
            headers={"Authorization": auth_header("2.2.1", token_a)},
        )
    assert response.json()["status_code"] == 2001
    assert "url" in response.json()["status_message"]
