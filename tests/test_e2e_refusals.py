"""What is answered at once, without reaching a station: bad input, unknown targets, offline
stations, tokens too long for OCPP 1.6 (docs/decisions.md#synchronous-answers). Nothing is stored
for a refused command and no OCPP call is made."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from chargegate.store.models import Command

from .conftest import Gateway, StationFactory
from .support.commands import reserve_now, start_session, unlock
from .support.emsp import FakeEmsp, auth_header
from .support.ocpi_client import OcpiClient


@pytest.fixture(params=["2.1.1", "2.2.1"])
async def ocpi(request: pytest.FixtureRequest, gateway: Gateway, emsp: FakeEmsp) -> OcpiClient:
    await emsp.register(gateway.base_url, await gateway.add_party(), request.param)
    return OcpiClient(gateway.base_url, emsp)


async def _commands_stored(gateway: Gateway) -> int:
    async with gateway.state.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(Command)) or 0)


async def test_body_not_json_is_http_400_with_2001(ocpi: OcpiClient) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{ocpi.gateway_url}/ocpi/cpo/{ocpi.version}/commands/START_SESSION",
            content=b"{not json",
            headers={**ocpi.emsp.headers(), "Content-Type": "application/json"},
        )
    assert response.status_code == 400
    body = response.json()
    assert body["status_code"] == 2001
    assert "not valid JSON" in body["status_message"]
    assert body["timestamp"].endswith("Z")


async def test_missing_field_is_2001_naming_the_field(
    ocpi: OcpiClient, gateway: Gateway, stations: StationFactory
) -> None:
    await stations("CP-1")
    body = start_session(ocpi.version, ocpi.emsp.response_url("START_SESSION"), "CP-1")
    del body["token"]["uid"]
    response = await ocpi.command("START_SESSION", body)
    assert response.status_code == 200
    assert response.json()["status_code"] == 2001
    assert "token.uid" in response.json()["status_message"]
    assert await _commands_stored(gateway) == 0


async def test_field_too_long_is_2001(ocpi: OcpiClient, stations: StationFactory) -> None:
    await stations("CP-1")
    body = start_session(ocpi.version, ocpi.emsp.response_url("START_SESSION"), "L" * 40)
    response = await ocpi.command("START_SESSION", body)
    assert response.json()["status_code"] == 2001
    assert "location_id" in response.json()["status_message"]


async def test_response_url_must_be_a_url(ocpi: OcpiClient, stations: StationFactory) -> None:
    await stations("CP-1")
    response = await ocpi.command("UNLOCK_CONNECTOR", unlock("not-a-url", "CP-1", "CP-1-1"))
    assert response.json()["status_code"] == 2001
    assert "response_url" in response.json()["status_message"]


async def test_unknown_location_is_2003_rejected(
    ocpi: OcpiClient, gateway: Gateway, stations: StationFactory
) -> None:
    station = await stations("CP-1")
    url = ocpi.emsp.response_url("START_SESSION")
    response = await ocpi.command("START_SESSION", start_session(ocpi.version, url, "NOPE"))
    body = response.json()
    assert response.status_code == 200
    assert body["status_code"] == 2003
    assert body["data"]["result"] == "REJECTED"
    assert "NOPE" in body["status_message"]
    assert station.calls("RemoteStartTransaction") == []
    assert await _commands_stored(gateway) == 0


@pytest.mark.parametrize("evse", ["CP-1-9", "CP-2-1", "garbage", "CP-1-0"])
async def test_unknown_evse_is_2003_rejected(
    ocpi: OcpiClient, stations: StationFactory, evse: str
) -> None:
    await stations("CP-1")
    url = ocpi.emsp.response_url("UNLOCK_CONNECTOR")
    response = await ocpi.command("UNLOCK_CONNECTOR", unlock(url, "CP-1", evse))
    body = response.json()
    assert body["status_code"] == 2003
    assert body["data"]["result"] == "REJECTED"


async def test_unknown_session_is_unknown_session(ocpi: OcpiClient) -> None:
    url = ocpi.emsp.response_url("STOP_SESSION")
    response = await ocpi.command("STOP_SESSION", {"response_url": url, "session_id": "nope"})
    body = response.json()
    assert body["status_code"] == 1000
    assert body["data"]["result"] == "UNKNOWN_SESSION"


async def test_offline_station_is_rejected_without_a_call(
    ocpi: OcpiClient, gateway: Gateway, stations: StationFactory
) -> None:
    station = await stations("CP-1")
    await station.close()
    for _ in range(100):
        if not await gateway.state.router.is_connected("CP-1"):
            break
        await __import__("asyncio").sleep(0.02)
    url = ocpi.emsp.response_url("START_SESSION")
    response = await ocpi.command("START_SESSION", start_session(ocpi.version, url, "CP-1"))
    body = response.json()
    assert body["status_code"] == 1000
    assert body["data"]["result"] == "REJECTED"
    assert "offline" in body["status_message"]
    if ocpi.version == "2.2.1":
        assert "offline" in body["data"]["message"][0]["text"]
    assert await _commands_stored(gateway) == 0


async def test_token_too_long_for_ocpp16_is_rejected_saying_why(
    ocpi: OcpiClient, stations: StationFactory
) -> None:
    station = await stations("CP-1")
    url = ocpi.emsp.response_url("START_SESSION")
    body = start_session(ocpi.version, url, "CP-1", uid="X" * 21)
    response = await ocpi.command("START_SESSION", body)
    answer = response.json()
    assert answer["data"]["result"] == "REJECTED"
    assert "20" in answer["status_message"] and "OCPP 1.6" in answer["status_message"]
    assert station.calls("RemoteStartTransaction") == []


async def test_unknown_command_name_is_a_clear_error(ocpi: OcpiClient) -> None:
    response = await ocpi.command("SELF_DESTRUCT", {"response_url": "http://x/y"})
    body = response.json()
    assert response.status_code == 404
    assert body["status_code"] == 2001
    assert "SELF_DESTRUCT" in body["status_message"]
    assert "START_SESSION" in body["status_message"]


async def test_cancel_reservation_does_not_exist_in_211(gateway: Gateway, emsp: FakeEmsp) -> None:
    await emsp.register(gateway.base_url, await gateway.add_party(), "2.1.1")
    ocpi = OcpiClient(gateway.base_url, emsp)
    response = await ocpi.command(
        "CANCEL_RESERVATION", {"response_url": "http://x/y", "reservation_id": "1"}
    )
    assert response.status_code == 404
    assert "CANCEL_RESERVATION" in response.json()["status_message"]


async def test_cancel_of_unknown_reservation_is_accepted_then_unknown_reservation(
    gateway: Gateway, emsp: FakeEmsp
) -> None:
    await emsp.register(gateway.base_url, await gateway.add_party(), "2.2.1")
    ocpi = OcpiClient(gateway.base_url, emsp)
    url = emsp.response_url("CANCEL_RESERVATION", "cancel-unknown")
    response = await ocpi.command(
        "CANCEL_RESERVATION", {"response_url": url, "reservation_id": "never-made"}
    )
    assert response.json()["data"]["result"] == "ACCEPTED"
    [result] = await emsp.wait_for("cancel-unknown")
    assert result.body["result"] == "UNKNOWN_RESERVATION"


async def test_reservation_in_the_past_is_refused(
    ocpi: OcpiClient, stations: StationFactory
) -> None:
    await stations("CP-1")
    url = ocpi.emsp.response_url("RESERVE_NOW")
    body = reserve_now(ocpi.version, url, "CP-1", "7", expiry="2001-01-01T00:00:00Z")
    answer = (await ocpi.command("RESERVE_NOW", body)).json()
    assert answer["status_code"] == 2001
    assert "expiry_date" in answer["status_message"]


@pytest.mark.parametrize("header", [None, "Token unknown-token", "Bearer something", "Token"])
async def test_missing_or_unknown_token_is_http_401(
    gateway: Gateway, emsp: FakeEmsp, header: str | None
) -> None:
    await emsp.register(gateway.base_url, await gateway.add_party(), "2.2.1")
    headers = {} if header is None else {"Authorization": header}
    async with httpx.AsyncClient() as client:
        for path in ("/ocpi/versions", "/ocpi/cpo/2.2.1/commands/START_SESSION"):
            response = await client.request(
                "GET" if path.endswith("versions") else "POST",
                gateway.base_url + path,
                json={},
                headers=headers,
            )
            assert response.status_code == 401, path
            assert response.json()["status_code"] == 2000


async def test_token_a_is_not_accepted_on_functional_modules(gateway: Gateway) -> None:
    token_a = await gateway.add_party()
    async with httpx.AsyncClient() as client:
        versions = await client.get(
            f"{gateway.base_url}/ocpi/versions", headers={"Authorization": f"Token {token_a}"}
        )
        command = await client.post(
            f"{gateway.base_url}/ocpi/cpo/2.2.1/commands/START_SESSION",
            json={},
            headers={"Authorization": auth_header("2.2.1", token_a)},
        )
    assert versions.status_code == 200
    assert command.status_code == 401


async def test_framework_errors_under_ocpi_are_envelopes(ocpi: OcpiClient) -> None:
    async with httpx.AsyncClient() as client:
        missing = await client.get(
            f"{ocpi.gateway_url}/ocpi/cpo/{ocpi.version}/nothing-here", headers=ocpi.emsp.headers()
        )
        wrong_method = await client.get(
            f"{ocpi.gateway_url}/ocpi/cpo/{ocpi.version}/commands/START_SESSION",
            headers=ocpi.emsp.headers(),
        )
    assert missing.status_code == 404 and missing.json()["status_code"] == 2000
    assert wrong_method.status_code == 405 and wrong_method.json()["status_code"] == 2000
    assert wrong_method.json()["timestamp"].endswith("Z")


async def test_location_ids_are_cistring_in_221_only(
    ocpi: OcpiClient, stations: StationFactory
) -> None:
    await stations("CP-1")
    url = ocpi.emsp.response_url("START_SESSION")
    response = await ocpi.command(
        "START_SESSION", start_session(ocpi.version, url, "cp-1", "cp-1-1")
    )
    body = response.json()
    if ocpi.version == "2.2.1":
        assert body["status_code"] == 1000 and body["data"]["result"] == "ACCEPTED"
    else:
        assert body["status_code"] == 2003
