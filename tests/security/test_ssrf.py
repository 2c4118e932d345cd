"""Outbound calls only where allowed, against the real server.

The gateway here allows only 127.0.0.1 (CIDR 127.0.0.1/32), the address the fake eMSP listens
on: a CIDR lifts the address rule but not the peer-origin rule, so a response_url on another
loopback port, at 169.254.169.254 or on a host that is not the peer's is refused at once."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
from sqlalchemy import func, select

from chargegate.delivery.client import PeerClient, SendError
from chargegate.domain.outbound_policy import SETTING, OutboundPolicy
from chargegate.egress import Egress, http_client
from chargegate.ocpi import credentials
from chargegate.ocpi.client import PeerEndpoints
from chargegate.ocpi.credentials import UNUSABLE_API
from chargegate.ocpi.emsp.registration import OcpiHandshake
from chargegate.service.emsp.ports import PeerApiError
from chargegate.store.models import Command, Outbox

from ..conftest import Gateway, StationFactory
from ..support.commands import start_session
from ..support.emsp import FakeEmsp
from ..support.emsp_api import EmspApi
from ..support.emsp_fixtures import api_key
from ..support.ocpi_client import OcpiClient
from ..support.servers import running
from ..support.webhook_sink import WebhookSink

ONLY_THE_PEER = "127.0.0.1"


@pytest.fixture
async def gateway(database_url: str) -> AsyncIterator[Gateway]:
    async with running(Gateway(database_url, outbound_allow=ONLY_THE_PEER)) as gw:
        yield gw


@pytest.fixture
async def sink() -> AsyncIterator[WebhookSink]:
    """Another service on loopback, on another port: what a response_url must not reach."""
    hook = await WebhookSink().start()
    try:
        yield hook
    finally:
        assert hook.server is not None
        await hook.server.stop()


@pytest.fixture
async def ocpi(gateway: Gateway, emsp: FakeEmsp) -> OcpiClient:
    await emsp.register(gateway.base_url, await gateway.add_party(), "2.2.1")
    return OcpiClient(gateway.base_url, emsp)


async def _stored(gateway: Gateway) -> tuple[int, int]:
    async with gateway.state.sessions() as s:
        commands = await s.scalar(select(func.count()).select_from(Command))
        outbox = await s.scalar(select(func.count()).select_from(Outbox))
    return commands, outbox


@pytest.mark.parametrize(
    ("where", "named"),
    [
        ("metadata", "169.254.169.254"),
        ("another loopback port", "127.0.0.1:{sink_port}"),
        ("a host not the peer's", "localhost:{emsp_port}"),
    ],
)
async def test_a_start_session_with_a_response_url_we_would_not_call_is_2001_at_once(
    gateway: Gateway,
    emsp: FakeEmsp,
    ocpi: OcpiClient,
    stations: StationFactory,
    sink: WebhookSink,
    where: str,
    named: str,
) -> None:
    await stations("CP-001")
    assert sink.server is not None and emsp.server is not None
    sink_port = sink.server.base_url.rsplit(":", 1)[1]
    emsp_port = emsp.base_url.rsplit(":", 1)[1]
    url = {
        "metadata": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "another loopback port": sink.url,
        "a host not the peer's": f"http://localhost:{emsp_port}/ocpi/emsp/2.2.1/commands/x/1",
    }[where]
    response = await ocpi.command(
        "START_SESSION", start_session("2.2.1", url, "CP-001", "CP-001-1")
    )
    body = response.json()
    assert body["status_code"] == 2001, body
    message = body["status_message"]
    assert named.format(sink_port=sink_port, emsp_port=emsp_port) in message
    assert SETTING in message  # and how the operator allows it
    assert await _stored(gateway) == (0, 0)  # no command, nothing to deliver
    # The same command with the peer's own response_url goes through and its result arrives;
    # by then the refused one would have reached the sink, had it been stored.
    good = emsp.response_url("START_SESSION", "own")
    accepted = await ocpi.command(
        "START_SESSION", start_session("2.2.1", good, "CP-001", "CP-001-1")
    )
    assert accepted.json()["data"]["result"] == "ACCEPTED"
    await emsp.wait_for("/commands/START_SESSION/own")
    assert sink.received == []


async def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_a_handshake_cannot_tell_closed_ports_services_and_statuses_apart(
    gateway: Gateway, emsp: FakeEmsp, sink: WebhookSink
) -> None:
    token_a = await gateway.add_party()

    async def banner(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")  # a service that is not HTTP
        await writer.drain()
        writer.close()

    not_http = await asyncio.start_server(banner, "127.0.0.1", 0)
    assert sink.server is not None
    versions_urls = [
        f"http://127.0.0.1:{await _closed_port()}/ocpi/versions",  # closed port
        f"http://127.0.0.1:{not_http.sockets[0].getsockname()[1]}/ocpi/versions",
        f"{sink.server.base_url}/ocpi/versions",  # HTTP, but 404
        "http://169.254.169.254/latest/meta-data/",  # refused address
        "http://10.0.0.1:22/",  # refused address
        f"http://localhost:{emsp.base_url.rsplit(':', 1)[1]}/ocpi/versions",  # refused name
    ]
    answers = []
    try:
        async with httpx.AsyncClient() as client:
            for url in versions_urls:
                creds = {
                    "token": "tokenB",
                    "url": url,
                    "business_details": {"name": "x"},
                    "party_id": "EMS",
                    "country_code": "NL",
                }
                response = await client.post(
                    f"{gateway.base_url}/ocpi/2.1.1/credentials",
                    json=creds,
                    headers={"Authorization": f"Token {token_a}"},
                )
                answers.append(
                    (
                        response.status_code,
                        response.json()["status_code"],
                        response.json()["status_message"],
                    )
                )
    finally:
        not_http.close()
    assert answers == [(200, 3001, UNUSABLE_API)] * len(versions_urls)
    assert sink.received == []
    # Token A was given back after each failed attempt: the real peer still registers with it.
    assert await emsp.register(gateway.base_url, token_a, "2.2.1")


async def test_a_peer_whose_endpoints_are_elsewhere_is_refused_with_the_same_answer(
    gateway: Gateway, emsp: FakeEmsp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The versions URL is allowed, but an endpoint we would call later is not."""
    token_a = await gateway.add_party()

    async def discover_metadata_endpoint(*_: object) -> PeerEndpoints:
        return PeerEndpoints("2.2.1", {"sessions": "http://169.254.169.254/ocpi/sessions"})

    monkeypatch.setattr(credentials, "discover", discover_metadata_endpoint)
    with pytest.raises(AssertionError, match="3001"):
        await emsp.register(gateway.base_url, token_a, "2.2.1")
    monkeypatch.undo()
    assert await emsp.register(gateway.base_url, token_a, "2.2.1")  # token A was given back


async def test_a_webhook_to_a_private_address_is_refused_when_subscribed(
    gateway: Gateway, sink: WebhookSink
) -> None:
    api = EmspApi(gateway.base_url, await api_key(gateway, "driver"))
    for url in [
        "http://10.0.0.1/hook",
        "http://169.254.169.254/",
        "http://[::1]:8080/",
        "ftp://x/",
    ]:
        refused = await api.request("PUT", "/emsp/webhook", json={"url": url})
        assert refused.status_code == 400, (url, refused.text)
    assert SETTING in refused.text or "http or https" in refused.text
    assert (await api.request("GET", "/emsp/webhook")).status_code == 404  # nothing stored
    allowed = await api.request("PUT", "/emsp/webhook", json={"url": sink.url})
    assert allowed.status_code == 200, allowed.text


async def test_our_own_handshake_as_emsp_does_not_call_a_refused_versions_url(
    gateway: Gateway,
) -> None:
    handshake = OcpiHandshake(gateway.state.http, gateway.settings)
    with pytest.raises(PeerApiError, match="not allowed"):
        await handshake.register(
            "http://169.254.169.254/ocpi/versions", "tokenA", "tokenB", version=None
        )


class CountingResolver:
    """A DNS that knows one name and counts how often it was asked."""

    def __init__(self, name: str, addresses: Sequence[str]) -> None:
        self.name, self.addresses, self.asked = name, list(addresses), 0

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked += 1
        return self.addresses if host == self.name else []


async def test_httpx_calls_connect_to_the_address_checked_keeping_the_name(
    sink: WebhookSink,
) -> None:
    assert sink.server is not None
    port = sink.server.base_url.rsplit(":", 1)[1]
    resolver = CountingResolver("peer.test", ["127.0.0.1"])  # no real DNS knows peer.test
    allowed = Egress(OutboundPolicy.parse("peer.test"), resolver)
    async with http_client(allowed, httpx.Limits()) as client:
        for _ in range(2):
            answer = await client.post(f"http://peer.test:{port}/hook", content=b"{}")
            assert answer.status_code == 204
    assert [hook.headers["host"] for hook in sink.received] == [f"peer.test:{port}"] * 2
    assert resolver.asked == 1  # one lookup for the kept-alive connection, none per request
    refused = Egress(OutboundPolicy(), CountingResolver("peer.test", ["127.0.0.1"]))
    async with http_client(refused, httpx.Limits()) as client:
        with pytest.raises(httpx.ConnectError, match=r"peer\.test \(127\.0\.0\.1\)"):
            await client.post(f"http://peer.test:{port}/hook", content=b"{}")
    assert len(sink.received) == 2


async def test_the_delivery_client_connects_to_the_address_checked(sink: WebhookSink) -> None:
    assert sink.server is not None
    port = sink.server.base_url.rsplit(":", 1)[1]
    resolver = CountingResolver("peer.test", ["127.0.0.1"])
    client = PeerClient(Egress(OutboundPolicy.parse("peer.test"), resolver))
    refusing = PeerClient(Egress(OutboundPolicy(), resolver))
    try:
        answer = await client.send("POST", f"http://peer.test:{port}/hook", {}, {}, 5.0)
        assert answer.status == 204
        with pytest.raises(SendError, match=f"ConnectError: calls to peer.test .*{SETTING}"):
            await refusing.send("POST", f"http://peer.test:{port}/hook", {}, {}, 5.0)
        with pytest.raises(SendError, match=r"169\.254\.169\.254"):
            await refusing.send("POST", "http://169.254.169.254/r", {}, {}, 5.0)
    finally:
        await client.aclose()
        await refusing.aclose()
    assert [hook.headers["host"] for hook in sink.received] == [f"peer.test:{port}"]
