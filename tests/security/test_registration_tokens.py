"""Token A is claimed by one conditional UPDATE before the peer's versions URL is called: of
concurrent handshakes with one token A exactly one gets a token C, and that token C works; the
others are refused as for an unknown token."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from ..conftest import Gateway
from ..support.emsp import FakeEmsp
from ..support.ocpi_client import OcpiClient
from ..support.servers import running

HANDSHAKES = 5


class GatedEmsp(FakeEmsp):
    """Holds every versions request until the test opens the gate, counting arrivals: the
    handshakes overlap for certain (without the claim, all five reach the versions URL)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.arrivals = 0
        self.arrived = asyncio.Event()

    def app(self) -> Any:
        inner = super().app()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["path"] == "/ocpi/versions":
                self.arrivals += 1
                self.arrived.set()
                await self.gate.wait()
            await inner(scope, receive, send)

        return app


@pytest.fixture
async def gated() -> AsyncIterator[GatedEmsp]:
    async with running(GatedEmsp()) as peer:
        yield peer


async def _post_credentials(gateway: Gateway, peer: FakeEmsp, token_a: str) -> httpx.Response:
    creds = {
        "token": peer.token_b,
        "url": f"{peer.base_url}/ocpi/versions",
        "roles": [
            {
                "role": "EMSP",
                "business_details": {"name": "Test eMSP"},
                "party_id": peer.party_id,
                "country_code": peer.country_code,
            }
        ],
    }
    header = "Token " + base64.b64encode(token_a.encode()).decode()
    async with httpx.AsyncClient() as client:
        return await client.post(
            f"{gateway.base_url}/ocpi/2.2.1/credentials",
            json=creds,
            headers={"Authorization": header},
        )


async def test_concurrent_handshakes_with_one_token_a_give_exactly_one_working_token_c(
    gateway: Gateway, gated: GatedEmsp
) -> None:
    token_a = await gateway.add_party()
    tasks = [
        asyncio.create_task(_post_credentials(gateway, gated, token_a)) for _ in range(HANDSHAKES)
    ]

    async def all_refused_but_one_or_all_waiting() -> None:
        # With the claim: four answers come back while one handshake waits at the gate.
        # Without the claim: all five wait at the gate.
        while sum(t.done() for t in tasks) < HANDSHAKES - 1 and gated.arrivals < HANDSHAKES:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED, timeout=0.05)

    await asyncio.wait_for(all_refused_but_one_or_all_waiting(), 20)
    gated.gate.set()
    answers = await asyncio.gather(*tasks)
    won = [a.json()["data"]["token"] for a in answers if a.status_code == 200]
    lost = [(a.status_code, a.json()["status_code"]) for a in answers if a.status_code != 200]
    assert len(won) == 1, [a.text for a in answers]
    assert lost == [(401, 2000)] * (HANDSHAKES - 1)
    assert gated.arrivals == 1  # only the winner called the versions URL
    # The winner's token C works on a functional module; token A is gone.
    gated.token_c, gated.version = won[0], "2.2.1"
    assert (await OcpiClient(gateway.base_url, gated).get("locations")).status_code == 200
    async with httpx.AsyncClient() as client:
        again = await client.get(
            f"{gateway.base_url}/ocpi/versions",
            headers={"Authorization": "Token " + base64.b64encode(token_a.encode()).decode()},
        )
    assert again.status_code == 401


async def test_a_failed_discovery_gives_token_a_back_and_a_retry_works(
    gateway: Gateway, emsp: FakeEmsp
) -> None:
    token_a = await gateway.add_party()
    real_url = emsp.base_url
    emsp.server.base_url = "http://127.0.0.1:9"  # type: ignore[union-attr]  # nothing listens
    with pytest.raises(AssertionError, match="3001"):
        await emsp.register(gateway.base_url, token_a, "2.2.1")
    emsp.server.base_url = real_url  # type: ignore[union-attr]
    assert await emsp.register(gateway.base_url, token_a, "2.2.1")
