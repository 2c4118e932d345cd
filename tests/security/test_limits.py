"""What one client may take of the gateway (docs/security.md#limits): a body over
max_body_bytes is refused with 413 (OCPI 2000 under /ocpi) whether it declares its length or
streams it in chunks; a connection that does not finish its headers in time is closed;
connections over the cap are refused with a 503 while the others are served; a party over its
request rate gets 429 with Retry-After and another party does not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from chargegate.limits.connections import ConnectionGuard, LimitedConfig
from chargegate.sim import SimulatedStation16

from ..conftest import Gateway
from ..support.commands import start_session
from ..support.emsp import FakeEmsp
from ..support.servers import running
from ..support.stations import station_factory

LIMIT = 4096
CPO_COMMANDS = "/ocpi/cpo/2.2.1/commands/START_SESSION"

Limited = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def limited(tmp_path: Path) -> AsyncIterator[Limited]:
    """Start a gateway (SQLite: the limits are the server's, not the database's) with the
    given settings; each is stopped after the test."""
    started: list[Gateway] = []

    async def start(**overrides: Any) -> Gateway:
        url = f"sqlite+aiosqlite:///{tmp_path / f'limits{len(started)}.db'}"
        gateway = await Gateway(url, **overrides).start()
        started.append(gateway)
        return gateway

    yield start
    for gateway in reversed(started):
        await gateway.stop()


def guard(gateway: Gateway) -> ConnectionGuard:
    config = gateway.server.server.config
    assert isinstance(config, LimitedConfig)
    return config.connection_guard


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """The guard's count changes inside uvicorn's protocol callbacks, which signal nothing:
    looked at every 10 ms until it holds."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def registered(gateway: Gateway, emsp: FakeEmsp, party_id: str = "EMS") -> str:
    """A registered eMSP party; its token C."""
    token_a = await gateway.add_party(party_id=party_id)
    await emsp.register(gateway.base_url, token_a, "2.2.1")
    assert emsp.token_c is not None
    return emsp.token_c


async def raw_exchange(port: int, request: bytes, read_timeout: float = 5.0) -> bytes:
    """Write `request`, read until the server closes; what it answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), read_timeout)
    finally:
        writer.close()


def port_of(gateway: Gateway) -> int:
    return gateway.server.port


async def test_a_declared_oversize_body_is_413_with_ocpi_2000(
    limited: Limited, emsp: FakeEmsp
) -> None:
    gateway = await limited(max_body_bytes=LIMIT)
    token_c = await registered(gateway, emsp)
    async with httpx.AsyncClient(base_url=gateway.base_url) as client:
        big = start_session("2.2.1", f"{emsp.base_url}/r", "CP-1", extra="x" * LIMIT)
        refused = await client.post(
            CPO_COMMANDS, json=big, headers={"Authorization": f"Token {token_c}"}
        )
        assert refused.status_code == 413
        assert refused.json()["status_code"] == 2000
        assert "max_body_bytes" in refused.json()["status_message"]
        assert refused.headers["connection"] == "close"
        # The operator API answers in its own shape.
        operator = await client.post("/remote_commands/reset", content=b"{" + b" " * LIMIT + b"}")
        assert operator.status_code == 413 and "max_body_bytes" in operator.json()["detail"]
        # A body within the limit is served as before (unknown location: OCPI 2003).
        small = start_session("2.2.1", f"{emsp.base_url}/r", "NO-SUCH-LOCATION")
        served = await client.post(
            CPO_COMMANDS, json=small, headers={"Authorization": f"Token {token_c}"}
        )
        assert served.status_code == 200 and served.json()["status_code"] == 2003


async def test_a_chunked_oversize_body_is_413_as_it_arrives(
    limited: Limited, emsp: FakeEmsp
) -> None:
    gateway = await limited(max_body_bytes=LIMIT)
    token_c = await registered(gateway, emsp)
    chunk = b"x" * 1024
    # Past the limit by one chunk, and no last chunk: the answer cannot wait for the end.
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(LIMIT // 1024 + 1))
    head = (
        f"POST {CPO_COMMANDS} HTTP/1.1\r\nHost: gateway\r\nAuthorization: Token {token_c}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    answer = await raw_exchange(port_of(gateway), head + body)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"status_code":2000' in rest


async def test_headers_not_finished_in_time_close_the_connection(limited: Limited) -> None:
    gateway = await limited(http_header_timeout=0.3)
    port = port_of(gateway)
    # Half a request line and headers, then nothing: closed after the deadline, unanswered.
    assert await raw_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n") == b""
    # A connection that sends nothing at all.
    assert await raw_exchange(port, b"") == b""
    await until(lambda: guard(gateway).open == 0)
    # A complete request in time is answered.
    answer = await raw_exchange(
        port, b"GET /healthz HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 200")


async def test_a_body_that_stops_arriving_closes_the_connection(
    limited: Limited, emsp: FakeEmsp
) -> None:
    gateway = await limited(http_body_timeout=0.3)
    token_c = await registered(gateway, emsp)
    head = (
        f"POST {CPO_COMMANDS} HTTP/1.1\r\nHost: gateway\r\nAuthorization: Token {token_c}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    ).encode()
    # Ten bytes of a hundred, then nothing: closed, unanswered.
    assert await raw_exchange(port_of(gateway), head + b'{"respons') == b""
    await until(lambda: guard(gateway).open == 0)


async def test_connections_over_the_per_address_cap_are_refused_stations_included(
    limited: Limited,
) -> None:
    gateway = await limited(max_connections_per_address=2, http_header_timeout=30.0)
    port = port_of(gateway)
    async with station_factory(gateway.ws_url, SimulatedStation16, "CP-CAP") as connect:
        station = await connect("CP-CAP")  # a station's WebSocket holds one of the two
        _, idle = await asyncio.open_connection("127.0.0.1", port)  # and a silent client
        try:
            await until(lambda: guard(gateway).open == 2)
            refused = await raw_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: g\r\n\r\n")
            assert refused.startswith(b"HTTP/1.1 503"), refused
            assert b"2 connections from one address" in refused
            await station.close()
            await until(lambda: guard(gateway).open == 1)  # the station's slot is free again
            served = await raw_exchange(
                port, b"GET /healthz HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n"
            )
            assert served.startswith(b"HTTP/1.1 200")
        finally:
            idle.close()


async def test_the_total_cap_refuses_what_is_beyond_it(limited: Limited) -> None:
    gateway = await limited(max_connections=1, http_header_timeout=30.0)
    port = port_of(gateway)
    _, idle = await asyncio.open_connection("127.0.0.1", port)
    try:
        await until(lambda: guard(gateway).open == 1)
        refused = await raw_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: g\r\n\r\n")
        assert refused.startswith(b"HTTP/1.1 503") and b"maximum of 1 connections" in refused
    finally:
        idle.close()


async def test_a_party_over_its_rate_gets_429_and_another_party_does_not(
    limited: Limited, emsp: FakeEmsp
) -> None:
    gateway = await limited(rate_limit_per_second=0.5, rate_limit_burst=10)
    token_c = await registered(gateway, emsp)
    async with running(FakeEmsp(party_id="EMT")) as other:
        other_token = await registered(gateway, other, party_id="EMT")
        async with httpx.AsyncClient(base_url=gateway.base_url) as client:

            async def locations(token: str) -> httpx.Response:
                return await client.get(
                    "/ocpi/cpo/2.2.1/locations", headers={"Authorization": f"Token {token}"}
                )

            answers = [await locations(token_c) for _ in range(12)]
            codes = [a.status_code for a in answers]
            assert codes[0] == 200 and 429 in codes, codes
            refused = answers[codes.index(429)]
            assert int(refused.headers["retry-after"]) >= 1
            assert refused.json()["status_code"] == 2000
            assert "too many requests" in refused.json()["status_message"]
            # The other party has its own bucket.
            assert (await locations(other_token)).status_code == 200
            # An operator API key too.
            key = await gateway.state.operator_keys.add("ops")
            operator = [
                await client.get("/stations", headers={"X-API-Key": key}) for _ in range(12)
            ]
            limited_answer = next(a for a in operator if a.status_code == 429)
            assert limited_answer.headers["retry-after"]
            assert "too many requests" in limited_answer.json()["detail"]
