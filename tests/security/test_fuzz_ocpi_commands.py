"""Hypothesis over OCPI command bodies of both versions, POSTed with a valid token C to
/ocpi/cpo/{version}/commands/{command} of a gateway with a station on line: valid bodies, bodies
with fields deleted, mistyped, oversized, odd dates, huge numbers or extra fields, any JSON and
no JSON. Every answer is an OCPI envelope and never a 5xx; a refused body (any status but 1000)
stores no command and nothing is ever POSTed to its response_url."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from chargegate.store.models import Command, Outbox

from ..support import commands as bodies
from .fuzz_counts import record
from .fuzz_target import EVSE, EXAMPLES, STATION, Target, fuzz_settings, in_thread, target
from .hostile_json import body_bytes

__all__ = ["target"]  # the fixture, used below

# CommandResponseType of both versions (2.1.1's also has TIMEOUT).
RESPONSE_TYPES = ("ACCEPTED", "REJECTED", "UNKNOWN_SESSION", "NOT_SUPPORTED", "TIMEOUT")
COMMANDS = (
    "START_SESSION",
    "STOP_SESSION",
    "RESERVE_NOW",
    "CANCEL_RESERVATION",
    "UNLOCK_CONNECTOR",
)


def valid_body(version: str, command: str, response_url: str) -> dict[str, Any]:
    if command == "START_SESSION":
        return bodies.start_session(version, response_url, STATION, EVSE)
    if command == "RESERVE_NOW":
        return bodies.reserve_now(version, response_url, STATION, "7", EVSE)
    if command == "UNLOCK_CONNECTOR":
        return bodies.unlock(response_url, STATION, EVSE)
    if command == "STOP_SESSION":
        return {"response_url": response_url, "session_id": "S-1"}
    return {"response_url": response_url, "reservation_id": "7"}


def _envelope(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code < 500, response.text
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("status_code"), int), body
    assert isinstance(body.get("timestamp"), str), body
    return body


def _fuzz(target: Target, version: str, refused: set[str]) -> None:
    emsp = target.emsps[version]
    headers = {**target.ocpi_headers(version), "Content-Type": "application/json"}

    @st.composite
    def requests(draw: st.DrawFn) -> tuple[str, str, bytes]:
        command = draw(st.sampled_from(COMMANDS))
        ref = uuid.uuid4().hex
        valid = valid_body(version, command, emsp.response_url(command, ref))
        return command, ref, draw(body_bytes(valid))

    with httpx.Client(base_url=target.base_url, timeout=30) as client:

        @fuzz_settings(EXAMPLES * len(COMMANDS))
        @given(request=requests())
        def one(request: tuple[str, str, bytes]) -> None:
            command, ref, content = request
            target.cases += 1
            before = target.count(Command.id)
            response = client.post(
                f"/ocpi/cpo/{version}/commands/{command}", content=content, headers=headers
            )
            body = _envelope(response)
            if body["status_code"] == 1000:
                assert body["data"]["result"] in RESPONSE_TYPES, body
                return
            assert 2000 <= body["status_code"] < 3000, body
            assert target.count(Command.id) == before, f"{body} stored a command"
            refused.add(ref)

        one()


async def _posted_to(target: Target, refs: set[str]) -> list[str]:
    """URLs of results queued or delivered for any of `refs`."""
    async with target.gateway.state.sessions() as s:
        urls = list(await s.scalars(select(Outbox.url)))
    urls += [r.path for e in target.emsps.values() for r in e.received]
    return [u for u in urls if any(ref in u for ref in refs)]


@pytest.mark.parametrize("version", ["2.1.1", "2.2.1"])
async def test_command_bodies_get_an_envelope_and_a_refusal_stores_nothing(
    target: Target, version: str
) -> None:
    refused: set[str] = set()
    try:
        await in_thread(lambda: _fuzz(target, version, refused))
    finally:
        record(f"OCPI {version} command bodies", target.cases)
    assert refused, "no body was refused: the strategies no longer reach the validation"
    assert await _posted_to(target, refused) == []
    async with httpx.AsyncClient(base_url=target.base_url) as client:
        assert (await client.get("/healthz")).status_code == 200
        again = await client.post(
            f"/ocpi/cpo/{version}/commands/UNLOCK_CONNECTOR",
            json=bodies.unlock(
                target.emsps[version].response_url("UNLOCK_CONNECTOR"), STATION, EVSE
            ),
            headers=target.ocpi_headers(version),
        )
        assert again.json()["status_code"] == 1000
