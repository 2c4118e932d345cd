"""The peer HTTP client against real loopback sockets: what goes on the wire, and every way a
request can fail to get an answer turning into one SendError that names it."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chargegate.delivery.client import PeerClient, SendError
from chargegate.domain.outbound_policy import OutboundPolicy
from chargegate.egress import Egress

# The peers here listen on loopback, which the outbound policy refuses unless allowed.
LOOPBACK = Egress(OutboundPolicy.parse("127.0.0.0/8,localhost,::1"))


class Peer:
    """A bare HTTP/1.1 server: records each request, answers with `reply` (or not at all)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.connections = 0
        self.reply: bytes | None = b'{"status_code":1000}'
        self.status = 200
        self.port = 0
        self.close_after_reply = False
        self.raw: bytes | None = None  # sent as the whole answer instead
        self._server: asyncio.Server | None = None

    async def start(self, tls: ssl.SSLContext | None = None) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *lines = head.decode("latin-1").split("\r\n")
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in lines if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append((request_line, headers, body))
                if self.raw is not None:
                    writer.write(self.raw)
                    await writer.drain()
                    if self.close_after_reply:
                        break
                    continue
                reply = self.reply
                if reply is None:
                    await asyncio.sleep(3600)  # never answers
                    continue
                status = f"HTTP/1.1 {self.status} X\r\nContent-Length: {len(reply)}\r\n\r\n"
                writer.write(status.encode() + reply)
                await writer.drain()
                if self.close_after_reply:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    server = Peer()
    await server.start()
    yield server
    await server.stop()


_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def no_proxy_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the machine's environment says, these tests choose their proxies."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
async def client() -> AsyncIterator[PeerClient]:
    c = PeerClient(LOOPBACK)
    yield c
    await c.aclose()


async def test_sends_json_with_the_given_headers_and_reuses_the_connection(
    peer: Peer, client: PeerClient
) -> None:
    url = f"http://127.0.0.1:{peer.port}/ocpi/emsp/2.2.1/commands/START_SESSION/abc"
    headers = {"Authorization": "Token xyz", "Content-Type": "application/json"}
    for n in range(3):
        answer = await client.send("POST", url, {"result": "ACCEPTED", "n": n}, headers, 5.0)
        assert answer.status == 200
        assert answer.json() == {"status_code": 1000}
    assert [r[0] for r in peer.requests] == [
        "POST /ocpi/emsp/2.2.1/commands/START_SESSION/abc HTTP/1.1"
    ] * 3
    _, sent_headers, body = peer.requests[0]
    assert json.loads(body) == {"result": "ACCEPTED", "n": 0}
    assert sent_headers["authorization"] == "Token xyz"
    assert sent_headers["content-type"] == "application/json"
    assert sent_headers["host"] == f"127.0.0.1:{peer.port}"
    assert peer.connections == 1  # kept alive between requests


async def test_an_error_status_is_an_answer_not_a_failure(peer: Peer, client: PeerClient) -> None:
    peer.status, peer.reply = 500, b"boom"
    answer = await client.send("PUT", f"http://127.0.0.1:{peer.port}/x", {}, {}, 5.0)
    assert (answer.status, answer.text()) == (500, "boom")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_refused_connection_names_the_error(client: PeerClient) -> None:
    with pytest.raises(SendError, match="ConnectError"):
        await client.send("POST", f"http://127.0.0.1:{_closed_port()}/x", {}, {}, 5.0)


async def test_a_peer_that_never_answers_times_out(peer: Peer, client: PeerClient) -> None:
    peer.reply = None
    with pytest.raises(SendError, match="ReadTimeout"):
        await client.send("POST", f"http://127.0.0.1:{peer.port}/x", {}, {}, 0.3)


@pytest.mark.parametrize("url", ["not a url", "ftp://127.0.0.1/x"])
async def test_an_unusable_url_names_the_problem(client: PeerClient, url: str) -> None:
    with pytest.raises(SendError, match="UnsupportedProtocol"):
        await client.send("POST", url, {}, {}, 1.0)


async def test_concurrent_sends_open_connections_and_later_ones_reuse_them(peer: Peer) -> None:
    client = PeerClient(LOOPBACK, max_connections=4)
    url = f"http://127.0.0.1:{peer.port}/r"
    try:
        for _ in range(3):
            answers = await asyncio.gather(
                *(client.send("POST", url, {}, {}, 5.0) for _ in range(8))
            )
            assert {a.status for a in answers} == {200}
        assert len(peer.requests) == 24
        assert peer.connections <= 4  # the cap, and every later round reused them
    finally:
        await client.aclose()


async def test_a_connection_the_peer_closed_while_idle_is_replaced(
    peer: Peer, client: PeerClient
) -> None:
    peer.close_after_reply = True
    url = f"http://127.0.0.1:{peer.port}/r"
    for _ in range(3):
        assert (await client.send("POST", url, {}, {}, 5.0)).status == 200
        await asyncio.sleep(0.05)  # the peer's close reaches us while the connection is idle
    assert peer.connections == 3


async def test_waiting_for_a_free_connection_counts_against_the_timeout(peer: Peer) -> None:
    peer.reply = None
    client = PeerClient(LOOPBACK, max_connections=1)
    url = f"http://127.0.0.1:{peer.port}/r"
    try:
        hanging = asyncio.create_task(client.send("POST", url, {}, {}, 5.0))
        await asyncio.sleep(0.1)
        with pytest.raises(SendError, match="PoolTimeout"):
            await client.send("POST", url, {}, {}, 0.2)
        hanging.cancel()
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    "raw",
    [
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\n2\r\n1}\r\n0\r\n\r\n',
        b'HTTP/1.1 200 OK\r\n\r\n{"a":1}',  # neither length nor chunks: ends at the close
        b'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{"a":1}',
    ],
    ids=["chunked", "until-close", "after-100-continue"],
)
async def test_every_way_http_frames_an_answer_is_read_whole(
    peer: Peer, client: PeerClient, raw: bytes
) -> None:
    peer.raw, peer.close_after_reply = raw, True
    answer = await client.send("POST", f"http://127.0.0.1:{peer.port}/r", {}, {}, 5.0)
    assert (answer.status, answer.json()) == (200, {"a": 1})


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"a"', "mid-answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "mid-answer"),
        (b"SMTP ready\r\n\r\n", "RemoteProtocolError: the peer's answer is not HTTP"),
        (b"", "mid-answer|ReadError"),
    ],
    ids=["short-body", "cut-headers", "not-http", "closed-at-once"],
)
async def test_an_answer_cut_short_or_not_http_is_a_failure(
    peer: Peer, client: PeerClient, raw: bytes, error: str
) -> None:
    peer.raw, peer.close_after_reply = raw, True
    with pytest.raises(SendError, match=error):
        await client.send("POST", f"http://127.0.0.1:{peer.port}/r", {}, {}, 5.0)


async def test_a_connection_the_peer_wants_closed_is_not_reused(peer: Peer) -> None:
    peer.raw = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    client = PeerClient(LOOPBACK)
    try:
        for _ in range(2):
            assert (
                await client.send("POST", f"http://127.0.0.1:{peer.port}/r", {}, {}, 5)
            ).status == 200
        assert peer.connections == 2
    finally:
        await client.aclose()


async def test_a_header_value_with_a_line_break_is_refused_before_sending(
    peer: Peer, client: PeerClient
) -> None:
    smuggled = {"X-Request-ID": "1\r\nX-Admin: yes"}
    with pytest.raises(SendError, match="line break"):
        await client.send("POST", f"http://127.0.0.1:{peer.port}/r", {}, smuggled, 5.0)
    assert peer.requests == []


async def test_the_request_target_keeps_the_query_and_encodes_what_http_cannot_carry(
    peer: Peer, client: PeerClient
) -> None:
    await client.send("POST", f"http://127.0.0.1:{peer.port}/r/é x?a=1&b=2", {}, {}, 5.0)
    assert peer.requests[0][0] == "POST /r/%C3%A9%20x?a=1&b=2 HTTP/1.1"


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl (to make a test certificate) is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_https_with_certificate_verification(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    peer = Peer()
    await peer.start(tls=server_tls)
    url = f"https://localhost:{peer.port}/ocpi/r"
    trusting = PeerClient(LOOPBACK, ssl_context=ssl.create_default_context(cafile=str(cert)))
    default = PeerClient(
        LOOPBACK
    )  # the system's CAs: our self-signed certificate is not among them
    try:
        for _ in range(2):
            answer = await trusting.send("POST", url, {"result": "ACCEPTED"}, {}, 5.0)
            assert answer.json() == {"status_code": 1000}
        assert peer.connections == 1  # TLS connections are kept alive too
        assert peer.requests[0][1]["host"] == f"localhost:{peer.port}"
        with pytest.raises(SendError, match=r"ConnectError.*(?i:certificate)"):
            await default.send("POST", url, {}, {}, 5.0)
    finally:
        await trusting.aclose()
        await default.aclose()
        await peer.stop()


async def test_behind_an_egress_proxy_requests_go_through_it(
    peer: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The peer plays the proxy: an absolute-form request line says the request came through one.
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{peer.port}")
    client = PeerClient(LOOPBACK)
    try:
        answer = await client.send(
            "POST", "http://emsp.example.com/r/1", {"result": "ACCEPTED"}, {"X-A": "1"}, 5.0
        )
    finally:
        await client.aclose()
    assert answer.status == 200 and answer.json() == {"status_code": 1000}
    [(request_line, headers, body)] = peer.requests
    assert request_line == "POST http://emsp.example.com/r/1 HTTP/1.1"
    assert headers["host"] == "emsp.example.com" and headers["x-a"] == "1"
    assert json.loads(body) == {"result": "ACCEPTED"}


async def test_no_proxy_and_other_schemes_go_direct(
    peer: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    client = PeerClient(LOOPBACK)
    try:
        answer = await client.send("POST", f"http://127.0.0.1:{peer.port}/r", {}, {}, 5.0)
        assert answer.status == 200
        # NO_PROXY does not name this host: the proxy (refusing connections) is used, and says so.
        with pytest.raises(SendError, match="ConnectError"):
            await client.send("POST", "http://emsp.example.com/r", {}, {}, 5.0)
    finally:
        await client.aclose()
    assert [r[0] for r in peer.requests] == ["POST /r HTTP/1.1"]
    monkeypatch.delenv("NO_PROXY")
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.delenv("HTTP_PROXY")
    direct = PeerClient(LOOPBACK)  # a proxy for https only: http goes direct, through our own pool
    try:
        assert (
            await direct.send("POST", f"http://127.0.0.1:{peer.port}/r", {}, {}, 5.0)
        ).status == 200
    finally:
        await direct.aclose()


async def test_a_header_with_a_line_break_is_refused_on_the_proxy_path_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{_closed_port()}")
    client = PeerClient(LOOPBACK)
    try:
        with pytest.raises(SendError, match="LocalProtocolError"):
            await client.send("POST", "http://emsp.example.com/r", {}, {"X-A": "1\r\nX-B: 2"}, 5.0)
    finally:
        await client.aclose()
