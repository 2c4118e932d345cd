"""The eMSP side of the credentials handshake: `chargegate peer connect` against a real chargegate
CPO, version choice, our eMSP versions/endpoints, and the CPO updating or dropping us."""

from __future__ import annotations

import base64

import httpx
import pytest

from chargegate.service.emsp.ports import PeerApiError

from .conftest import Gateway
from .support.cli_process import run_cli
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


def _b64(token: str) -> str:
    return "Token " + base64.b64encode(token.encode()).decode()


async def test_peer_connect_registers_with_a_chargegate_cpo(
    gateway: Gateway, emsp_gateway: Gateway
) -> None:
    token_a = await gateway.add_party(country_code="NL", party_id="EMS")
    code, out, err = await run_cli(
        emsp_gateway,
        "peer",
        "connect",
        "--versions-url",
        f"{gateway.base_url}/ocpi/versions",
        "--token-a",
        token_a,
    )
    assert code == 0, err
    assert "connected to NL-CGW (CPO, chargegate CPO) with OCPI 2.2.1" in out

    code, listed, err = await run_cli(emsp_gateway, "peer", "list")
    assert code == 0, err
    [row] = [line for line in listed.splitlines() if line.startswith("NL-CGW")]
    assert row.split()[:4] == ["NL-CGW", "CPO", "CONNECTED", "2.2.1"]

    # The CPO holds our token B and our RECEIVER endpoints (2.2.1: commands is our SENDER side).
    [party] = await gateway.state.parties.all()
    assert party.state == "REGISTERED" and party.ocpi_version == "2.2.1"
    emsp_ocpi = f"{emsp_gateway.base_url}/ocpi/emsp/2.2.1"
    assert party.endpoints == {
        "credentials": f"{emsp_ocpi}/credentials",
        "sessions": f"{emsp_ocpi}/sessions",
        "cdrs": f"{emsp_ocpi}/cdrs",
    }
    # We hold its token C, which works on its functional modules; token A is void.
    [peer] = await emsp_gateway.state.emsp.peers.all()
    assert peer.token_c and peer.endpoints["commands"] == (
        f"{gateway.base_url}/ocpi/cpo/2.2.1/commands"
    )
    async with httpx.AsyncClient() as client:
        with_c = await client.get(
            f"{gateway.base_url}/ocpi/cpo/2.2.1/sessions",
            headers={"Authorization": _b64(peer.token_c)},
        )
        with_a = await client.get(
            f"{gateway.base_url}/ocpi/versions", headers={"Authorization": _b64(token_a)}
        )
    assert with_c.status_code == 200 and with_a.status_code == 401


async def test_our_emsp_versions_and_endpoints_answer_token_b_only(
    gateway: Gateway, emsp_gateway: Gateway
) -> None:
    token_a = await gateway.add_party(country_code="NL", party_id="EMS")
    await emsp_gateway.state.emsp.peers.connect(f"{gateway.base_url}/ocpi/versions", token_a)
    [party] = await gateway.state.parties.all()
    token_b = party.token_b
    base = f"{emsp_gateway.base_url}/ocpi/emsp"
    async with httpx.AsyncClient() as client:
        versions = await client.get(f"{base}/versions", headers={"Authorization": _b64(token_b)})
        d221 = await client.get(f"{base}/2.2.1", headers={"Authorization": _b64(token_b)})
        d211 = await client.get(f"{base}/2.1.1", headers={"Authorization": f"Token {token_b}"})
        ours = await client.get(
            f"{base}/2.2.1/credentials", headers={"Authorization": _b64(token_b)}
        )
        stranger = await client.get(f"{base}/versions", headers={"Authorization": "Token nope"})
        # Token B is for our eMSP role only, not for the CPO role of the same process.
        cpo_role = await client.get(
            f"{emsp_gateway.base_url}/ocpi/versions", headers={"Authorization": _b64(token_b)}
        )
    assert [v["version"] for v in versions.json()["data"]] == ["2.2.1", "2.1.1"]
    roles = {(e["identifier"], e["role"]) for e in d221.json()["data"]["endpoints"]}
    assert roles == {
        ("credentials", "SENDER"),
        ("commands", "SENDER"),
        ("sessions", "RECEIVER"),
        ("cdrs", "RECEIVER"),
    }
    assert all("role" not in e for e in d211.json()["data"]["endpoints"])
    assert ours.json()["data"]["token"] == token_b
    assert ours.json()["data"]["roles"][0] == {
        "role": "EMSP",
        "business_details": {"name": "Test eMSP"},
        "party_id": "EMS",
        "country_code": "NL",
    }
    assert stranger.status_code == 401 and cpo_role.status_code == 401


async def test_a_cpo_listing_only_211_gets_211(stub_cpo: StubCpo, emsp_gateway: Gateway) -> None:
    stub_cpo.versions = ("2.1.1",)
    peer = await connect_to_stub(stub_cpo, emsp_gateway)
    assert peer.ocpi_version == "2.1.1" and stub_cpo.version == "2.1.1"
    assert (peer.country_code, peer.party_id, peer.token_c) == ("NL", "STB", stub_cpo.token_c)
    # The stub read our 2.1.1 endpoints with token B during its handshake.
    assert set(stub_cpo.emsp_endpoints) == {"credentials", "commands", "sessions", "cdrs"}


async def test_a_221_cpo_that_refuses_base64_gets_plain_tokens(
    stub_cpo: StubCpo, emsp_gateway: Gateway
) -> None:
    stub_cpo.versions, stub_cpo.base64_tokens = ("2.2.1",), False
    peer = await connect_to_stub(stub_cpo, emsp_gateway)
    assert peer.plain_token
    api = EmspApi(emsp_gateway.base_url, await api_key(emsp_gateway, "driver"))
    await api.sent("NL-STB", "STOP_SESSION", {"session_id": "S-1"})
    [sent] = stub_cpo.commands
    assert sent.headers["authorization"] == f"Token {stub_cpo.token_c}"


async def test_a_wrong_token_a_fails_clearly_and_keeps_nothing(
    stub_cpo: StubCpo, emsp_gateway: Gateway
) -> None:
    with pytest.raises(PeerApiError, match="HTTP 401"):
        await emsp_gateway.state.emsp.peers.connect(stub_cpo.versions_url, "not-the-token")
    assert await emsp_gateway.state.emsp.peers.all() == []


async def test_no_common_version_names_both_sides(stub_cpo: StubCpo, emsp_gateway: Gateway) -> None:
    stub_cpo.versions = ("2.0",)
    with pytest.raises(PeerApiError, match=r"lists 2\.0, we want 2\.2\.1, 2\.1\.1"):
        await connect_to_stub(stub_cpo, emsp_gateway)


async def test_the_cpo_updates_its_credentials_then_unregisters(
    stub_cpo: StubCpo, emsp_gateway: Gateway
) -> None:
    await connect_to_stub(stub_cpo, emsp_gateway)
    url = stub_cpo.emsp_endpoints["credentials"]
    old_b = stub_cpo.token_b
    stub_cpo.token_c = "tokenC-renewed"
    updated = await stub_cpo.call_emsp(
        "PUT",
        url,
        {
            "token": stub_cpo.token_c,
            "url": stub_cpo.versions_url,
            "roles": [
                {
                    "role": "CPO",
                    "business_details": {"name": "Stub CPO"},
                    "party_id": "STB",
                    "country_code": "NL",
                }
            ],
        },
    )
    assert updated.json()["status_code"] == 1000, updated.text
    new_b = updated.json()["data"]["token"]
    assert new_b != old_b
    [peer] = await emsp_gateway.state.emsp.peers.all()
    assert peer.token_c == "tokenC-renewed"
    assert (await stub_cpo.call_emsp("GET", url, token=old_b)).status_code == 401
    gone = await stub_cpo.call_emsp("DELETE", url, token=new_b)
    assert gone.json()["status_code"] == 1000
    [peer] = await emsp_gateway.state.emsp.peers.all()
    assert peer.state == "UNREGISTERED"
    assert (await stub_cpo.call_emsp("GET", url, token=new_b)).status_code == 401
