"""START_SESSION end to end: eMSP → gateway → OCPP 1.6J station → result at response_url."""

from __future__ import annotations

import base64

import httpx
import pytest

from .conftest import Gateway, StationFactory
from .support.commands import start_session
from .support.emsp import FakeEmsp


@pytest.mark.parametrize("version", ["2.1.1", "2.2.1"])
async def test_start_session_accepted_reaches_station_and_result_is_posted(
    gateway: Gateway, emsp: FakeEmsp, stations: StationFactory, version: str
) -> None:
    await emsp.register(gateway.base_url, await gateway.add_party(), version)
    station = await stations("CP-001")
    url = emsp.response_url("START_SESSION", "ref-1")
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{gateway.base_url}/ocpi/cpo/{version}/commands/START_SESSION",
            json=start_session(version, url, "CP-001", "CP-001-1"),
            headers=emsp.headers(**{"X-Request-ID": "req-1", "X-Correlation-ID": "corr-1"}),
        )
    body = response.json()
    assert response.status_code == 200
    assert body["status_code"] == 1000
    assert body["data"]["result"] == "ACCEPTED"
    assert response.headers["X-Request-ID"] == "req-1"
    assert response.headers["X-Correlation-ID"] == "corr-1"
    if version == "2.2.1":
        assert body["data"]["timeout"] == 4
        assert response.headers["OCPI-to-party-id"] == "EMS"
        assert response.headers["OCPI-from-party-id"] == "CGW"
    else:
        assert "timeout" not in body["data"]

    sent = await station.wait_for_call("RemoteStartTransaction", timeout=5)
    assert sent == {"idTag": "TOKEN-001", "connectorId": 1}

    [result] = await emsp.wait_for("/commands/START_SESSION/ref-1")
    assert result.method == "POST"
    assert result.body == {"result": "ACCEPTED"}
    assert result.headers["x-correlation-id"] == "corr-1"
    if version == "2.2.1":
        expected = "Token " + base64.b64encode(emsp.token_b.encode()).decode()
        assert result.headers["authorization"] == expected
        assert result.headers["ocpi-from-party-id"] == "CGW"
        assert result.headers["ocpi-to-party-id"] == "EMS"
    else:
        assert result.headers["authorization"] == f"Token {emsp.token_b}"
