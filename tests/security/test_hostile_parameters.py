"""Parameters no client should send get a client error, never a 5xx: pagination offsets past
what a database can bind (64-bit), negative ones, and an Authorization header that is not
ASCII. The gateway still answers on the same connection afterwards."""

from __future__ import annotations

import httpx
import pytest

from ..conftest import Gateway
from ..support.emsp import FakeEmsp
from ..support.ocpi_client import OcpiClient
from ..support.operator import OperatorClient

HUGE = 2**63  # one past the largest OFFSET PostgreSQL and SQLite bind


@pytest.fixture
async def ocpi(gateway: Gateway, emsp: FakeEmsp) -> OcpiClient:
    await emsp.register(gateway.base_url, await gateway.add_party(), "2.2.1")
    return OcpiClient(gateway.base_url, emsp)


@pytest.mark.parametrize("module", ["locations", "sessions", "cdrs"])
@pytest.mark.parametrize("offset", [HUGE, 10**30, -1])
async def test_ocpi_list_offset_out_of_range_is_2001(
    ocpi: OcpiClient, module: str, offset: int
) -> None:
    response = await ocpi.get(module, offset=offset)
    assert response.status_code == 200  # OCPI: a bad parameter is status 2001 in the envelope
    body = response.json()
    assert body["status_code"] == 2001 and "offset" in body["status_message"]


async def test_ocpi_list_offset_at_the_bound_is_an_empty_page(ocpi: OcpiClient) -> None:
    response = await ocpi.get("locations", offset=HUGE - 1)
    assert response.status_code == 200 and response.json()["data"] == []


@pytest.mark.parametrize("path", ["/stations", "/communication_log", "/emsp/commands"])
@pytest.mark.parametrize("offset", [HUGE, -1])
async def test_operator_list_offset_out_of_range_is_422(
    gateway: Gateway, path: str, offset: int
) -> None:
    operator = OperatorClient(gateway.base_url, await gateway.state.operator_keys.add("ops"))
    response = await operator.get(path, offset=offset)
    assert response.status_code == 422
    assert "offset" in str(response.json()["detail"])


async def test_a_non_ascii_authorization_header_is_refused_and_the_connection_kept(
    gateway: Gateway,
) -> None:
    async with httpx.AsyncClient() as client:
        refused = await client.get(
            f"{gateway.base_url}/ocpi/versions",
            headers=[(b"Authorization", "Token é€".encode())],
        )
        assert refused.status_code == 401
        assert refused.json()["status_code"] == 2000
        again = await client.get(f"{gateway.base_url}/ocpi/versions")  # same keep-alive pool
        assert again.status_code == 401
