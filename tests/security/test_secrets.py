"""Secrets at rest and in logs (docs/security.md#secrets): what we must send (a peer's token B,
a CPO's token C, webhook secrets) is sealed in the database and still works; values stored in
the clear before are read and sealed at start; keys rotate; the SQLite database and the key
file are 0600; no token, key, secret or response_url reference appears in any log line of a
full START_SESSION between two chargegates."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import String, select, type_coerce

from chargegate.store import db
from chargegate.store.models import EmspCommand, EmspPeer, EmspWebhook, Party
from chargegate.store.secret_box import PREFIX, SecretBox, SecretKeyError, new_key

from ..conftest import Gateway, StationFactory
from ..support.emsp import FakeEmsp
from ..support.emsp_api import EmspApi
from ..support.emsp_fixtures import api_key, emsp_database_url, emsp_gateway
from ..support.servers import running
from ..support.webhook_sink import WebhookSink

__all__ = ["emsp_database_url", "emsp_gateway"]  # fixtures used below

PEER = "NL-CGW"


class Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def every_log_line() -> Iterator[list[logging.LogRecord]]:
    """Every record at DEBUG and up, uvicorn's access log included (it does not propagate).
    Entered once every server has started: a uvicorn Config configures its loggers anew."""
    handler = Everything()
    loggers = [logging.getLogger(), logging.getLogger("uvicorn.access")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield handler.records
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


def text_of(record: logging.LogRecord) -> str:
    text = record.getMessage()
    if record.exc_info:
        text += logging.Formatter().formatException(record.exc_info)
    return text


async def stored(gateway: Gateway, column: Any) -> list[str]:
    """The column's values as the database holds them (not opened)."""
    async with gateway.state.sessions() as s:
        rows = await s.scalars(select(type_coerce(column, String())).where(column.is_not(None)))
        return list(rows)


def database_bytes(database_url: str) -> bytes:
    path = db.sqlite_file(database_url)
    assert path is not None
    files = [path, path.with_name(path.name + "-wal")]
    return b"".join(f.read_bytes() for f in files if f.exists())


async def test_a_full_start_session_keeps_secrets_sealed_and_out_of_every_log_line(
    gateway: Gateway,
    emsp_gateway: Gateway,
    stations: StationFactory,
) -> None:
    async with running(WebhookSink()) as sink:
        with every_log_line() as records:
            secrets = await start_session_end_to_end(gateway, emsp_gateway, stations, sink)
    await check_sealed(gateway, emsp_gateway, secrets)
    forms = {
        f"{name} ({form})": value
        for name, plain in secrets.items()
        for form, value in (("plain", plain), ("base64", base64.b64encode(plain.encode()).decode()))
    }
    lines = [text_of(r) for r in records]
    access = [text_of(r) for r in records if r.name == "uvicorn.access"]
    # The access log did see the result POST, with its reference masked.
    assert any("/ocpi/emsp/2.2.1/commands/START_SESSION/***" in line for line in access), access
    leaks = {name: line for name, value in forms.items() for line in lines if value in line}
    assert not leaks, leaks


async def start_session_end_to_end(
    gateway: Gateway, emsp_gateway: Gateway, stations: StationFactory, sink: WebhookSink
) -> dict[str, str]:
    """Handshake, webhook, START_SESSION from our eMSP API to our CPO and its station, the
    result back and the webhook's events signed; every secret involved, by name."""
    token_a = await gateway.add_party(country_code="NL", party_id="EMS")
    await emsp_gateway.state.emsp.peers.connect(
        f"{gateway.base_url}/ocpi/versions", token_a, version="2.2.1"
    )
    key = await api_key(emsp_gateway, "operator")
    api = EmspApi(emsp_gateway.base_url, key)
    configured = await api.request("PUT", "/emsp/webhook", json={"url": sink.url})
    secret = configured.json()["secret"]
    await stations("CP-1")
    started = await api.sent(
        PEER,
        "START_SESSION",
        {
            "location_id": "CP-1",
            "evse_uid": "CP-1-1",
            "token": {"uid": "TOKEN-001", "type": "RFID", "contract_id": "NL-EMS-C00000001"},
        },
    )
    # The CPO delivered the result with the token B it keeps sealed; we called it with
    # the token C we keep sealed.
    done = await api.wait_for(started["id"], lambda v: v["state"] == "RESULT", 15.0)
    assert done["result"]["result"] == "ACCEPTED"
    hooks = await sink.wait_for(3)
    for hook in hooks:  # signed with the webhook secret we keep sealed
        expected = hmac.new(secret.encode(), hook.body, hashlib.sha256).hexdigest()
        assert hook.headers["x-chargegate-signature"] == f"sha256={expected}"
    assert [json.loads(h.body)["event"] for h in hooks][:3] == [
        "REQUESTED",
        "RESPONDED",
        "RESULT",
    ]

    async with gateway.state.sessions() as s:
        token_b = (await s.scalars(select(Party.token_b))).one()
    async with emsp_gateway.state.sessions() as s:
        token_c = (await s.scalars(select(EmspPeer.token_c))).one()
        reference = (await s.scalars(select(EmspCommand.response_ref))).one()
    assert token_b and token_c and reference
    return {
        "token A": token_a,
        "token B": token_b,
        "token C": token_c,
        "webhook secret": secret,
        "API key": key,
        "response_url reference": reference,
    }


async def check_sealed(gateway: Gateway, emsp_gateway: Gateway, secrets: dict[str, str]) -> None:
    """In the rows as stored, and (SQLite) anywhere in the database's files."""
    sealed = {
        "token B": (gateway, Party.token_b, secrets["token B"]),
        "token C": (emsp_gateway, EmspPeer.token_c, secrets["token C"]),
        "webhook secret": (emsp_gateway, EmspWebhook.secret, secrets["webhook secret"]),
    }
    for name, (owner, column, plain) in sealed.items():
        raw = await stored(owner, column)
        assert raw and all(v.startswith(PREFIX) and plain not in v for v in raw), name
    if gateway.settings.is_sqlite:
        for owner, _, plain in sealed.values():
            assert plain.encode() not in database_bytes(owner.settings.database_url)


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'chargegate.db'}"


@pytest.fixture
async def emsp() -> AsyncIterator[FakeEmsp]:
    async with running(FakeEmsp()) as peer:
        yield peer


async def registered_party(url: str, emsp: FakeEmsp, **settings: Any) -> None:
    async with running(Gateway(url, **settings)) as gateway:
        await emsp.register(gateway.base_url, await gateway.add_party(), "2.2.1")


def raw_token_b(url: str) -> str:
    path = db.sqlite_file(url)
    assert path is not None
    with sqlite3.connect(path) as conn:
        (value,) = conn.execute("SELECT token_b FROM parties").fetchone()
    return str(value)


async def test_a_token_stored_in_the_clear_before_is_read_and_sealed_at_start(
    sqlite_url: str, emsp: FakeEmsp
) -> None:
    await registered_party(sqlite_url, emsp)
    path = db.sqlite_file(sqlite_url)
    assert path is not None
    with sqlite3.connect(path) as conn:  # as a gateway before encryption left it
        conn.execute("UPDATE parties SET token_b = ?", (emsp.token_b,))
    async with running(Gateway(sqlite_url)) as gateway:
        raw = raw_token_b(sqlite_url)
        assert raw.startswith(PREFIX) and emsp.token_b not in raw
        async with gateway.state.sessions() as s:
            assert (await s.scalars(select(Party.token_b))).one() == emsp.token_b


async def test_a_new_key_in_front_of_the_old_one_reseals_everything(
    sqlite_url: str, emsp: FakeEmsp
) -> None:
    old, new = new_key(), new_key()
    await registered_party(sqlite_url, emsp, secret_key=old)
    assert SecretBox([old]).open(raw_token_b(sqlite_url)) == emsp.token_b
    async with running(Gateway(sqlite_url, secret_key=f"{new},{old}")):
        pass
    assert SecretBox([new]).open(raw_token_b(sqlite_url)) == emsp.token_b  # the old key may go
    with pytest.raises(SecretKeyError, match="CHARGEGATE_SECRET_KEY"):
        SecretBox([new_key()]).open(raw_token_b(sqlite_url))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_database_and_its_key_file_are_created_0600(sqlite_url: str) -> None:
    path = db.sqlite_file(sqlite_url)
    assert path is not None and not path.exists()
    async with running(Gateway(sqlite_url)):
        files = [path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", ".key"))]
        for file in files:
            if file.exists():
                assert mode(file) == 0o600, file
        assert mode(path.with_name(path.name + ".key")) == 0o600


async def test_a_database_readable_by_every_user_is_tightened_with_a_warning(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = db.sqlite_file(sqlite_url)
    assert path is not None
    path.touch()
    os.chmod(path, 0o644)
    async with running(Gateway(sqlite_url)):
        assert mode(path) & 0o007 == 0
    assert any("readable by every user" in r.getMessage() for r in caplog.records)
