"""What the fuzz tests in this folder found answering 500, each now a client error (or an answer)
on both databases: numbers past 64 bits, digits that are not ASCII, NUL characters (PostgreSQL
text refuses them), values longer than their column, JSON nested past Python's recursion limit,
an X-Correlation-ID longer than the one we store."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from chargegate import json_text
from chargegate.domain import commands as dc
from chargegate.ocpi.emsp.bodies import command_body
from chargegate.service.emsp.ports import BodyError, SenderIdentity

from ..support import commands as bodies
from .fuzz_target import EVSE, STATION, Target, target

__all__ = ["target"]  # the fixture, used below

BIG = 2**63
DEEP = b"[" * 5000 + b"]" * 5000


@dataclass(frozen=True)
class Case:
    """A request as `who` sends it ("operator", "emsp211", "cpo": token B) and the answer:
    HTTP status and, for OCPI, the envelope's status_code."""

    name: str
    who: str
    method: str
    path: str
    http: int
    ocpi: int | None = None
    json: Any = None
    content: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


def _session(**changes: Any) -> dict[str, Any]:
    return {"country_code": "NL", "party_id": "STA", "status": "ACTIVE", **changes}


CASES = [
    Case("frame id past 64 bits", "operator", "GET", f"/communication_log/{BIG}", 422),
    Case("frame page id past 64 bits", "operator", "GET", f"/communication_log/ui/{BIG}", 422),
    Case("CDR key past 64 bits", "cpo", "GET", f"/ocpi/emsp/2.2.1/cdrs/{BIG}", 200, 2001),
    Case("peer number in superscript digits", "operator", "GET", "/emsp/commands?peer=¹", 404),
    Case("peer number past 64 bits", "operator", "GET", f"/emsp/commands?peer={BIG}0", 404),
    Case("SSE after past 64 bits", "operator", "GET", f"/emsp/events?after={BIG}", 422),
    Case("NUL in an operator path", "operator", "GET", "/stations/CP%00", 400),
    Case("NUL in an operator query", "operator", "GET", "/communication_log?station=%00", 400),
    Case("NUL in an OCPI path", "emsp221", "GET", "/ocpi/cpo/2.2.1/sessions/S%00", 400, 2001),
    Case(
        "NUL in a remote start",
        "operator",
        "POST",
        "/remote_commands/asynchronous/remote_start_attempt",
        422,
        json={"cpId": "CP-1\x00", "connectorId": 1, "idTag": "A"},
    ),
    Case(
        "connector id past 32 bits",
        "operator",
        "POST",
        "/remote_commands/asynchronous/remote_start_attempt",
        422,
        json={"cpId": STATION, "connectorId": 2**40, "idTag": "A"},
    ),
    Case(
        "NUL in a remote stop",
        "operator",
        "POST",
        "/remote_commands/asynchronous/remote_stop",
        422,
        json={"sessionId": "S\x00"},
    ),
    Case(
        "NUL in a webhook URL",
        "operator",
        "PUT",
        "/emsp/webhook",
        422,
        json={"url": "http://a/\x00"},
    ),
    Case(
        "NUL in an eMSP API command",
        "operator",
        "POST",
        "/emsp/peers/NL-STA/commands/STOP_SESSION",
        400,
        json={"session_id": "S\x00"},
    ),
    Case(
        "deep JSON to the eMSP API",
        "operator",
        "POST",
        "/emsp/peers/NL-STA/commands/STOP_SESSION",
        400,
        content=DEEP,
    ),
    Case(
        "NUL in a 2.1.1 location_id",
        "emsp211",
        "POST",
        "/ocpi/cpo/2.1.1/commands/START_SESSION",
        200,
        2001,
        json=bodies.start_session("2.1.1", "http://127.0.0.1/r", "CP-1\x00", EVSE),
    ),
    Case(
        "2.1.1 reservation_id past 36 digits",
        "emsp211",
        "POST",
        "/ocpi/cpo/2.1.1/commands/RESERVE_NOW",
        200,
        2001,
        json={
            **bodies.reserve_now("2.1.1", "http://127.0.0.1/r", STATION, "1"),
            "reservation_id": 10**40,
        },
    ),
    Case(
        "party_id longer than 3 in a Session path",
        "cpo",
        "PUT",
        "/ocpi/emsp/2.2.1/sessions/NL/STAX/S-1",
        200,
        2001,
        json=_session(),
    ),
    Case(
        "session_id longer than 36 in a Session path",
        "cpo",
        "PUT",
        f"/ocpi/emsp/2.2.1/sessions/NL/STA/{'S' * 37}",
        200,
        2001,
        json=_session(),
    ),
    Case(
        "NUL in a pushed Session",
        "cpo",
        "PUT",
        "/ocpi/emsp/2.2.1/sessions/NL/STA/S-9",
        400,
        2001,
        json=_session(status="\x00"),
    ),
    Case(
        "deep JSON Session",
        "cpo",
        "PUT",
        "/ocpi/emsp/2.2.1/sessions/NL/STA/S-9",
        400,
        2001,
        content=DEEP,
    ),
    Case(
        "CDR naming a session_id longer than 36: stored, unlinked",
        "cpo",
        "POST",
        "/ocpi/emsp/2.2.1/cdrs",
        200,
        1000,
        json={"id": "CDR-9", "session_id": "S" * 40, "country_code": "NLD"},
    ),
    Case(
        "CDR id with a control character",
        "cpo",
        "POST",
        "/ocpi/emsp/2.2.1/cdrs",
        200,
        2001,
        json={"id": "CDR\x1f"},
    ),
    Case(
        "deep JSON result",
        "cpo",
        "POST",
        f"/ocpi/emsp/2.2.1/commands/STOP_SESSION/{uuid.uuid4().hex}",
        400,
        2001,
        content=DEEP,
    ),
]


def _auth(target: Target, who: str) -> dict[str, str]:
    if who == "operator":
        return {"X-API-Key": target.operator_key}
    if who == "cpo":
        return target.cpo_headers()
    return target.ocpi_headers("2.1.1" if who == "emsp211" else "2.2.1")


async def test_inputs_that_answered_500_get_a_client_error(target: Target) -> None:
    wrong = []
    async with httpx.AsyncClient(base_url=target.base_url, timeout=30) as client:
        for case in CASES:
            headers: list[tuple[bytes, bytes]] = [
                (name.encode(), value.encode()) for name, value in _auth(target, case.who).items()
            ]
            headers += [(name.encode(), value) for name, value in case.headers]
            if case.content is not None:
                headers.append((b"Content-Type", b"application/json"))
            response = await client.request(
                case.method, case.path, json=case.json, content=case.content, headers=headers
            )
            got = (response.status_code, response.json().get("status_code") if case.ocpi else None)
            if got != (case.http, case.ocpi):
                wrong.append(f"{case.name}: {got} {response.text[:200]}")
        assert (await client.get("/healthz")).status_code == 200
    assert not wrong, "\n".join(wrong)


async def test_a_last_event_id_in_superscript_digits_is_ignored(target: Target) -> None:
    async with (
        httpx.AsyncClient(base_url=target.base_url, timeout=30) as client,
        client.stream(
            "GET",
            "/emsp/events",
            headers=[
                (b"X-API-Key", target.operator_key.encode()),
                (b"Last-Event-ID", "\xb9".encode("latin-1")),
            ],
        ) as response,
    ):
        assert response.status_code == 200  # the stream starts, from now on


async def test_a_correlation_id_longer_than_stored_is_replaced(target: Target) -> None:
    emsp = target.emsps["2.2.1"]
    sent = "C" * 100
    async with httpx.AsyncClient(base_url=target.base_url, timeout=30) as client:
        response = await client.post(
            "/ocpi/cpo/2.2.1/commands/UNLOCK_CONNECTOR",
            json=bodies.unlock(emsp.response_url("UNLOCK_CONNECTOR"), STATION, EVSE),
            headers={**target.ocpi_headers("2.2.1"), "X-Correlation-ID": sent},
        )
    assert response.json()["status_code"] == 1000
    echoed = response.headers["x-correlation-id"]
    assert echoed != sent and 0 < len(echoed) <= 64


@pytest.mark.parametrize("reservation_id", ["¹²", "１２", "1" * 37])
def test_a_211_reservation_id_that_is_no_ascii_integer_is_a_body_error(
    reservation_id: str,
) -> None:
    request = dc.ReserveNow(
        location_id=STATION,
        token=dc.Token(uid="U", type="RFID", contract_id="C", issuer="", raw={}),
        expiry_date=datetime(2099, 1, 1, tzinfo=UTC),
        reservation_id=reservation_id,
    )
    with pytest.raises(BodyError, match="reservation_id"):
        command_body(
            "2.1.1",
            request,
            "https://emsp.example.com/r",
            gireve=False,
            sender=SenderIdentity(owner=("NL", "EMS"), issuer="Test"),
            now=datetime(2026, 1, 1, tzinfo=UTC),
        )


@pytest.mark.parametrize(
    "text", [b"[" * 33 + b"]" * 33, DEEP, b'{"a": "\\u0000"}', base64.b64encode(b"x")]
)
def test_loads_document_refuses_deep_nul_and_non_json(text: bytes) -> None:
    with pytest.raises(ValueError):
        json_text.loads_document(text)


def test_loads_document_reads_an_ocpi_object() -> None:
    cdr = {"id": "C", "charging_periods": [{"dimensions": [{"type": "ENERGY", "volume": 1}]}]}
    assert json_text.loads_document(json_text.dumps(cdr)) == cdr


@pytest.mark.parametrize(
    ("answer", "status_code"),
    [
        ({"result": "ACCEPTED", "timeout": 2**40}, 1000),
        ({"result": "ACCEPTED", "timeout": 10**400}, 1000),
        ({"result": "ACCEPTED", "timeout": 30}, 2**40),
    ],
    ids=["timeout-past-32-bits", "timeout-past-a-double", "status-code-past-32-bits"],
)
async def test_a_cpo_answer_with_numbers_past_their_columns_is_taken(
    target: Target, answer: dict[str, Any], status_code: int
) -> None:
    """Read beside the fuzzing: what a CPO answers to a command we send is input too."""
    target.stub.answer, target.stub.answer_status = answer, status_code
    async with httpx.AsyncClient(base_url=target.base_url, timeout=30) as client:
        response = await client.post(
            "/emsp/peers/NL-STA/commands/STOP_SESSION",
            json={"session_id": "S-1"},
            headers={"X-API-Key": target.operator_key},
        )
    assert response.status_code == 201, response.text
    view = response.json()
    assert view["response"]["result"] == "ACCEPTED"
    assert view["response"]["timeout"] is None or view["response"]["timeout"] <= 86400
