"""Station admission: only registered stations are served, a password-protected
station only after HTTP Basic auth, refusals come before the WebSocket is accepted with an HTTP
status, and nobody can take over a connected station without its password. Also the registry's
command line and API, passwords set through the station, TLS (Security Profile 2) and the
development mode."""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from chargegate.cli.main import main
from chargegate.cli.serve import tls_options
from chargegate.domain import station_calls as sc
from chargegate.sim import SimulatedStation16
from chargegate.sim.script import Script
from chargegate.sim.station201 import SimulatedStation201

from ..conftest import Gateway
from ..support.operator import OperatorClient
from ..support.servers import LiveServer, running

PASSWORD = "s3cret-station-password-01"
Station = SimulatedStation16 | SimulatedStation201
VERSIONS: dict[str, type[SimulatedStation16] | type[SimulatedStation201]] = {
    "1.6": SimulatedStation16,
    "2.0.1": SimulatedStation201,
}


def serving(station: Station) -> asyncio.Task[None]:
    """The station's socket loop (it has one once connected)."""
    assert station._serve_task is not None
    return station._serve_task


@pytest.fixture
async def gw(database_url: str) -> AsyncIterator[Gateway]:
    async with running(Gateway(database_url, ocpp_admission="registered")) as gateway:
        yield gateway


@pytest.fixture
async def booted() -> AsyncIterator[list[Station]]:
    """Stations a test connected; closed at its end."""
    stations: list[Station] = []
    yield stations
    for station in stations:
        await station.close()


async def boot(
    gateway: Gateway, booted: list[Station], station_id: str, version: str = "1.6", **options: Any
) -> Station:
    station = VERSIONS[version](station_id, gateway.ws_url, **options)
    await station.connect_and_boot()
    booted.append(station)
    return station


def basic(user: str, password: bytes | str) -> dict[str, str]:
    raw = password.encode() if isinstance(password, str) else password
    return {"Authorization": "Basic " + base64.b64encode(user.encode() + b":" + raw).decode()}


async def handshake_status(url: str, headers: dict[str, str] | None = None) -> int:
    """The HTTP status a WebSocket handshake gets (101 when accepted; then closed at once)."""
    try:
        async with connect(url, subprotocols=["ocpp1.6"], additional_headers=headers or {}):  # type: ignore[list-item]
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


async def refusal(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, subprotocols=["ocpp1.6"], additional_headers=headers or {}):  # type: ignore[list-item]
            pass
    response = refused.value.response
    return response.status_code, dict(response.headers)


async def still_serves(gateway: Gateway, station: Station) -> None:
    """A call from the gateway still reaches `station` itself."""
    before = len(station.received)
    reply = await gateway.state.router.call(station.id, sc.GetConfiguration(("X",)), 5.0)
    assert reply.outcome is sc.Outcome.ACCEPTED
    assert len(station.received) == before + 1


# ---- the handshake ---------------------------------------------------------------------------


async def test_an_unknown_station_is_refused_with_404_before_accept(
    gw: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "chargegate.ocpp.endpoint"):
        status, _ = await refusal(f"{gw.ws_url}/CP-NOBODY")
    assert status == 404
    assert "CP-NOBODY" in caplog.text and "not registered" in caplog.text
    assert not await gw.state.router.is_connected("CP-NOBODY")


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_the_right_password_is_admitted(
    gw: Gateway, booted: list[Station], version: str
) -> None:
    await gw.state.admission.add("CP-1", PASSWORD)
    station = await boot(gw, booted, "CP-1", version, password=PASSWORD)
    assert await gw.state.router.is_connected("CP-1")
    await still_serves(gw, station)


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        (None, "no HTTP Basic credentials"),
        (basic("CP-1", "wrong-password-000000"), "wrong password"),
        (basic("CP-2", PASSWORD), "user-id is not the station id"),
        ({"Authorization": "Basic !!!"}, "no HTTP Basic credentials"),
        ({"Authorization": f"Bearer {PASSWORD}"}, "no HTTP Basic credentials"),
    ],
)
async def test_missing_or_wrong_credentials_get_401_with_a_basic_challenge(
    gw: Gateway,
    caplog: pytest.LogCaptureFixture,
    headers: dict[str, str] | None,
    why: str,
) -> None:
    await gw.state.admission.add("CP-1", PASSWORD)
    await gw.state.admission.add("CP-2", PASSWORD)
    with caplog.at_level(logging.WARNING, "chargegate.ocpp.endpoint"):
        status, response_headers = await refusal(f"{gw.ws_url}/CP-1", headers)
    assert status == 401
    assert response_headers["www-authenticate"].startswith("Basic realm=")
    assert why in caplog.text
    assert PASSWORD not in caplog.text


async def test_a_disabled_station_is_refused_and_dropped(
    gw: Gateway, booted: list[Station]
) -> None:
    await gw.state.admission.add("CP-1", PASSWORD)
    station = await boot(gw, booted, "CP-1", password=PASSWORD)
    await gw.state.admission.set_disabled("CP-1", True)
    await asyncio.wait_for(serving(station), 5)  # the gateway closed its socket
    assert not await gw.state.router.is_connected("CP-1")
    assert await handshake_status(f"{gw.ws_url}/CP-1", basic("CP-1", PASSWORD)) == 403
    # Wrong credentials still get 401: only the station itself learns it is disabled.
    assert await handshake_status(f"{gw.ws_url}/CP-1") == 401
    await gw.state.admission.set_disabled("CP-1", False)
    assert await handshake_status(f"{gw.ws_url}/CP-1", basic("CP-1", PASSWORD)) == 101


async def test_a_station_without_password_is_admitted_by_id_but_not_twice(
    gw: Gateway, booted: list[Station]
) -> None:
    _, generated = await gw.state.admission.add("CP-1", generate=False)
    assert generated is None
    station = await boot(gw, booted, "CP-1")
    # Anyone knowing the id could be the station: the socket already there wins.
    assert await handshake_status(f"{gw.ws_url}/CP-1") == 409
    assert await gw.state.router.is_connected("CP-1")
    await still_serves(gw, station)


async def test_an_impostor_without_the_password_cannot_take_over(
    gw: Gateway, booted: list[Station]
) -> None:
    await gw.state.admission.add("CP-1", PASSWORD)
    real = await boot(gw, booted, "CP-1", password=PASSWORD)
    for headers in (None, basic("CP-1", "not-the-password-0000")):
        assert await handshake_status(f"{gw.ws_url}/CP-1", headers) == 401
    assert real.ready.is_set() and not serving(real).done()
    await still_serves(gw, real)


async def test_a_storm_of_connections_with_the_id_leaves_the_real_station_alone(
    gw: Gateway, booted: list[Station]
) -> None:
    await gw.state.admission.add("CP-1", PASSWORD)
    real = await boot(gw, booted, "CP-1", password=PASSWORD)
    storm = [
        handshake_status(f"{gw.ws_url}/CP-1", None if i % 2 else basic("CP-1", f"guess-{i:016d}"))
        for i in range(60)
    ]
    statuses = await asyncio.gather(*storm)
    assert set(statuses) == {401}, statuses
    assert not serving(real).done()
    await still_serves(gw, real)


async def test_an_authenticated_second_connection_replaces_the_first(
    gw: Gateway, booted: list[Station]
) -> None:
    await gw.state.admission.add("CP-1", PASSWORD)
    first = await boot(gw, booted, "CP-1", password=PASSWORD)
    second = SimulatedStation16("CP-1", gw.ws_url, password=PASSWORD)
    await second.connect_and_boot()
    booted.append(second)
    await asyncio.wait_for(serving(first), 5)  # the older socket was closed
    await still_serves(gw, second)


@pytest.mark.parametrize("mode", ["open", "registered"])
@pytest.mark.parametrize("station_id", ["..", "*", "CP:1", "a" * 49, "CP%201", "CP+1"])
async def test_ids_no_url_can_carry_are_refused_in_both_modes(
    database_url: str, mode: str, station_id: str
) -> None:
    async with running(Gateway(database_url, ocpp_admission=mode)) as gateway:
        status = await handshake_status(f"{gateway.ws_url}/{station_id}")
        assert status in (400, 404) if station_id == ".." else status == 400
        assert not await gateway.state.router.is_connected(station_id)


async def test_ids_of_48_url_safe_characters_are_served(
    database_url: str, booted: list[Station]
) -> None:
    async with running(Gateway(database_url)) as gateway:
        station = await boot(gateway, booted, "Az09._-" + "x" * 41)
        assert await gateway.state.router.is_connected(station.id)


# ---- open mode ----------------------------------------------------------------------------


async def test_open_mode_warns_at_every_start_and_admits_any_id(
    database_url: str, booted: list[Station], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "chargegate.bootstrap"):
        async with running(Gateway(database_url, ocpp_admission="open")) as gateway:
            await boot(gateway, booted, "ANY-ID")
            assert await gateway.state.router.is_connected("ANY-ID")
    warnings = [r.getMessage() for r in caplog.records if r.name == "chargegate.bootstrap"]
    assert any(
        "CHARGEGATE_OCPP_ADMISSION=open: any station is admitted and published" in w
        and "development only" in w
        for w in warnings
    ), warnings


async def test_registered_mode_does_not_warn(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "chargegate.bootstrap"):
        async with running(Gateway(database_url, ocpp_admission="registered")):
            pass
    assert "CHARGEGATE_OCPP_ADMISSION=open" not in caplog.text


async def test_open_mode_still_checks_a_registered_stations_password(database_url: str) -> None:
    async with running(Gateway(database_url, ocpp_admission="open")) as gateway:
        await gateway.state.admission.add("CP-1", PASSWORD)
        assert await handshake_status(f"{gateway.ws_url}/CP-1") == 401
        assert await handshake_status(f"{gateway.ws_url}/CP-1", basic("CP-1", PASSWORD)) == 101


# ---- passwords through the station ----------------------------------------------------------


async def operator(gateway: Gateway, *scopes: str) -> OperatorClient:
    key = await gateway.state.operator_keys.add("ops", scopes or ("operator", "read"))
    return OperatorClient(gateway.base_url, key)


@pytest.mark.parametrize(
    ("version", "key"),
    [("1.6", "AuthorizationKey"), ("2.0.1", "BasicAuthPassword")],
)
async def test_a_password_set_through_the_station_is_stored_once_it_accepts(
    gw: Gateway, booted: list[Station], version: str, key: str
) -> None:
    await gw.state.admission.add("CP-1", PASSWORD)
    station = await boot(gw, booted, "CP-1", version, password=PASSWORD)
    ops = await operator(gw)
    answer = await ops.request("PUT", "/stations/CP-1/password", json={"viaStation": True})
    assert answer.status_code == 200, answer.text
    new = answer.json()["password"]
    assert answer.json()["stationStatus"] == "Accepted" and len(new) == 40
    _, payload = station.received[-1]
    assert key in str(payload)
    # 1.6: the key's bytes are the password (whitepaper); 2.0.1: the passwordString itself.
    assert station.password == (bytes.fromhex(new) if version == "1.6" else new.encode())
    await station.close()
    assert await handshake_status(f"{gw.ws_url}/CP-1", basic("CP-1", PASSWORD)) == 401
    await station.connect_and_boot()  # with the password it took
    assert await gw.state.router.is_connected("CP-1")
    log = (await ops.get("/communication_log", cpId="CP-1", limit=100)).text
    assert new not in log and (version != "1.6" or new.upper() not in log)


async def test_a_password_the_station_refuses_is_not_stored(
    gw: Gateway, booted: list[Station]
) -> None:
    await gw.state.admission.add("CP-1", PASSWORD)
    station = await boot(
        gw,
        booted,
        "CP-1",
        password=PASSWORD,
        script=Script(answers={"ChangeConfiguration": "reject"}),
    )
    ops = await operator(gw)
    answer = await ops.request("PUT", "/stations/CP-1/password", json={"viaStation": True})
    assert answer.status_code == 409 and "Rejected" in answer.text
    assert station.password == PASSWORD.encode()
    await station.close()
    await station.connect_and_boot()  # the old password still works
    assert await gw.state.router.is_connected("CP-1")


async def test_authorization_key_through_change_configuration_follows_and_is_masked(
    gw: Gateway, booted: list[Station]
) -> None:
    await gw.state.admission.add("CP-1", PASSWORD)
    station = await boot(gw, booted, "CP-1", password=PASSWORD)
    ops = await operator(gw)
    key = "00112233445566778899aabbccddeeff01234567"
    answer = await ops.post(
        "/remote_commands/synchronous/CP-1/change_configurations",
        {"configurations": [{"key": "AuthorizationKey", "value": key}]},
    )
    assert answer.status_code == 200, answer.text
    assert key not in answer.text
    await station.close()
    assert await handshake_status(f"{gw.ws_url}/CP-1", basic("CP-1", PASSWORD)) == 401
    assert await handshake_status(f"{gw.ws_url}/CP-1", basic("CP-1", bytes.fromhex(key))) == 101
    # Some 1.6 firmwares present the hex digits themselves: the same key.
    assert await handshake_status(f"{gw.ws_url}/CP-1", basic("CP-1", key.upper())) == 101
    log = (await ops.get("/communication_log", cpId="CP-1", limit=200)).text
    assert "AuthorizationKey" in log and key not in log


# ---- the registry: API and command line -----------------------------------------------------


async def test_the_api_registers_and_manages_stations_with_scopes(gw: Gateway) -> None:
    reader = await operator(gw, "read")
    ops = await operator(gw)
    assert (await reader.post("/stations", {"cpId": "CP-1"})).status_code == 403
    created = await ops.post("/stations", {"cpId": "CP-1"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["registered"] and body["hasPassword"] and len(body["password"]) == 40
    assert (await ops.post("/stations", {"cpId": "CP-1"})).status_code == 409
    # An id our rule refuses is 400; a body its schema refuses is FastAPI's 422.
    assert (await ops.post("/stations", {"cpId": "CP:1"})).status_code == 400
    assert (await ops.post("/stations", {"cpId": "CP-2", "password": "short"})).status_code == 422
    weak = await ops.post("/stations", {"cpId": "CP-2", "noPassword": True})
    assert weak.status_code == 201 and not weak.json()["hasPassword"]
    assert "password" not in weak.json()

    shown = await reader.get("/stations/CP-1/admission")
    assert shown.status_code == 200 and "password" not in shown.json()
    assert shown.json()["hasPassword"] and not shown.json()["disabled"]
    listed = await reader.get("/stations")
    assert {s["cpId"]: s["registered"] for s in listed.json()} == {"CP-1": True, "CP-2": True}

    patch = {"json": {"disabled": True}}
    assert (await reader.request("PATCH", "/stations/CP-1/admission", **patch)).status_code == 403
    disabled = await ops.request("PATCH", "/stations/CP-1/admission", **patch)
    assert disabled.status_code == 200 and disabled.json()["disabled"]
    assert await handshake_status(f"{gw.ws_url}/CP-1", basic("CP-1", body["password"])) == 403

    chosen = await ops.request("PUT", "/stations/CP-2/password", json={"password": PASSWORD})
    assert chosen.status_code == 200 and chosen.json()["hasPassword"]
    assert "password" not in chosen.json()
    assert await handshake_status(f"{gw.ws_url}/CP-2", basic("CP-2", PASSWORD)) == 101
    dropped = await ops.request("DELETE", "/stations/CP-2/password")
    assert dropped.status_code == 200 and not dropped.json()["hasPassword"]

    assert (await reader.request("DELETE", "/stations/CP-2")).status_code == 403
    assert (await ops.request("DELETE", "/stations/CP-2")).status_code == 204
    assert (await ops.request("DELETE", "/stations/CP-2")).status_code == 404
    assert await handshake_status(f"{gw.ws_url}/CP-2") == 404
    unknown = await ops.request("PATCH", "/stations/NOPE/admission", **patch)
    assert unknown.status_code == 404


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """`chargegate station …` in this process (as the console script runs it): (exit code,
    stdout, stderr)."""
    monkeypatch.setenv("CHARGEGATE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["station", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_the_command_line_manages_the_registry(cli: Any) -> None:
    code, out, _ = cli("add", "CP-1")
    assert code == 0
    password = out.strip().splitlines()[-1]
    assert len(password) == 40 and "not shown again" in out
    assert cli("add", "CP-1")[0] == 2
    assert "invalid station id" in cli("add", "CP:1")[2]
    code, out, _ = cli("add", "CP-2", "--no-password")
    assert code == 0 and "id alone" in out
    code, out, _ = cli("add", "CP-3", "--password", PASSWORD)
    assert code == 0 and PASSWORD not in out
    assert cli("add", "CP-4", "--password", "too-short")[0] == 2

    listed = cli("list")[1]
    assert "CP-1" in listed and "CP-2" in listed and password not in listed
    assert cli("disable", "CP-1")[0] == 0
    shown = cli("show", "CP-1")[1]
    assert "disabled" in shown and "yes" in shown
    assert cli("enable", "CP-1")[0] == 0
    assert "state:     registered" in cli("show", "CP-1")[1]

    code, out, _ = cli("set-password", "CP-2")
    assert code == 0 and len(out.strip().splitlines()[-1]) == 40
    code, _, err = cli("set-password", "CP-2", "--via-station")
    assert code == 2 and "api-key" in err
    assert cli("remove", "CP-2")[0] == 0
    assert "unregistered" in cli("show", "CP-2")[1]
    assert cli("remove", "CP-2")[0] == 2
    assert cli("show", "NOPE")[0] == 2


# ---- TLS (Security Profile 2) -----------------------------------------------------------------


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_stations_connect_over_tls_with_basic_auth(
    database_url: str, tmp_path: Path, booted: list[Station]
) -> None:
    cert, key = _self_signed(tmp_path)
    gateway = Gateway(
        database_url, ocpp_admission="registered", tls_certfile=str(cert), tls_keyfile=str(key)
    )
    gateway.server = LiveServer(
        gateway.app, gateway.sock, gateway.settings, **tls_options(gateway.settings)
    )
    wss = gateway.ws_url.replace("ws://", "wss://")
    trust = ssl.create_default_context(cafile=str(cert))
    async with running(gateway):
        await gateway.state.admission.add("CP-TLS", PASSWORD)
        for version in VERSIONS:
            station = VERSIONS[version]("CP-TLS", wss, password=PASSWORD, ssl_context=trust)
            await station.connect_and_boot()
            booted.append(station)
            assert await gateway.state.router.is_connected("CP-TLS")
            await still_serves(gateway, station)
            await station.close()
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{wss}/CP-TLS", subprotocols=["ocpp1.6"], ssl=trust):  # type: ignore[list-item]
                pass
        assert refused.value.response.status_code == 401
        with pytest.raises(ssl.SSLError):  # a client that does not trust the certificate
            async with connect(f"{wss}/CP-TLS", subprotocols=["ocpp1.6"]):  # type: ignore[list-item]
                pass
