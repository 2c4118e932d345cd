"""Hypothesis over what a connected CPO POSTs to our eMSP role with its valid token B: command
results at the response_urls we handed out (and at made-up ones), Sessions (PUT and PATCH, odd
ids in the path) and CDRs, as valid objects, mutated ones, any JSON and no JSON. Every answer is
an OCPI envelope and never a 5xx; a refused result leaves the command as it was, a refused Session
or CDR stores nothing; what was stored reads back through the OCPI and eMSP APIs without a 5xx."""

from __future__ import annotations

import copy
import uuid
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import given
from hypothesis import strategies as st

from chargegate.store.models import EmspCdr, EmspSession

from ..support.emsp_api import EmspApi
from .fuzz_counts import record
from .fuzz_target import EXAMPLES, Target, fuzz_settings, in_thread, target
from .hostile_json import ODD_STRINGS, body_bytes

__all__ = ["target"]  # the fixture, used below

PEER = "NL-STA"
VERSION = "2.2.1"  # the stub CPO's
_TOKEN = {
    "country_code": "NL",
    "party_id": "EMS",
    "uid": "TOKEN-001",
    "type": "RFID",
    "contract_id": "NL-EMS-C12345678-X",
}
SESSION: dict[str, Any] = {
    "country_code": "NL",
    "party_id": "STA",
    "id": "S-1",
    "start_date_time": "2026-01-01T00:00:00Z",
    "kwh": 1.5,
    "cdr_token": _TOKEN,
    "auth_method": "COMMAND",
    "authorization_reference": "REF-1",
    "location_id": "CP-1",
    "evse_uid": "CP-1-1",
    "connector_id": "1",
    "currency": "EUR",
    "status": "ACTIVE",
    "last_updated": "2026-01-01T00:00:00Z",
}
CDR: dict[str, Any] = {
    "country_code": "NL",
    "party_id": "STA",
    "id": "CDR-1",
    "start_date_time": "2026-01-01T00:00:00Z",
    "end_date_time": "2026-01-01T01:00:00Z",
    "session_id": "S-1",
    "cdr_token": _TOKEN,
    "auth_method": "COMMAND",
    "authorization_reference": "REF-1",
    "cdr_location": {"id": "CP-1", "evse_uid": "CP-1-1", "connector_id": "1"},
    "currency": "EUR",
    "charging_periods": [
        {
            "start_date_time": "2026-01-01T00:00:00Z",
            "dimensions": [{"type": "ENERGY", "volume": 1.5}],
        }
    ],
    "total_cost": {"excl_vat": 0.5},
    "total_energy": 1.5,
    "total_time": 1.0,
    "last_updated": "2026-01-01T01:00:00Z",
}
RESULT = {"result": "ACCEPTED", "message": [{"language": "en", "text": "started"}]}

SEGMENTS = st.text(min_size=1, max_size=40) | ODD_STRINGS.filter(lambda s: 0 < len(s) < 1000)
VERSIONS = st.sampled_from([VERSION, VERSION, "2.1.1"]) | SEGMENTS


def _path(*parts: str) -> str:
    return "/".join(quote(p, safe="") for p in parts)


@st.composite
def requests(draw: st.DrawFn, response_urls: list[str]) -> tuple[str, str, str, bytes]:
    """(kind, method, path, body)."""
    kind = draw(st.sampled_from(["result", "session", "cdr"]))
    if kind == "result":
        url = draw(st.sampled_from(response_urls))
        path = url.split("://", 1)[1].split("/", 1)[1]
        if draw(st.booleans()):  # a made-up reference or command
            head, command, _ = path.rsplit("/", 2)
            path = f"{head}/{_path(draw(st.just(command) | SEGMENTS), draw(SEGMENTS))}"
        return kind, "POST", "/" + path, draw(body_bytes(RESULT))
    version = draw(VERSIONS)
    if kind == "cdr":
        return kind, "POST", f"/ocpi/emsp/{_path(version)}/cdrs", draw(body_bytes(CDR))
    session_id = draw(st.sampled_from(["S-1", "S-2"]) | SEGMENTS)
    country = draw(st.just("NL") | SEGMENTS)
    party = draw(st.just("STA") | SEGMENTS)
    valid = copy.deepcopy(SESSION)
    valid.update(id=session_id, country_code=country, party_id=party)
    method = draw(st.sampled_from(["PUT", "PATCH"]))
    path = f"/ocpi/emsp/{_path(version)}/sessions/{_path(country, party, session_id)}"
    return kind, method, path, draw(body_bytes(valid))


def _results(client: httpx.Client, ids: list[str]) -> dict[str, Any]:
    return {
        i: client.get(f"/emsp/commands/{i}", headers=client.headers).json()["result"] for i in ids
    }


def _fuzz(target: Target, ids: list[str], response_urls: list[str]) -> None:
    headers = {**target.cpo_headers(), "Content-Type": "application/json"}
    operator = {"X-API-Key": target.operator_key}
    with httpx.Client(base_url=target.base_url, headers=operator, timeout=30) as client:

        @fuzz_settings(EXAMPLES * 10)
        @given(request=requests(response_urls))
        def one(request: tuple[str, str, str, bytes]) -> None:
            kind, method, path, content = request
            target.cases += 1
            results = _results(client, ids) if kind == "result" else {}
            stored = {
                "session": lambda: target.count(EmspSession.pk),
                "cdr": lambda: target.count(EmspCdr.pk),
                "result": lambda: 0,
            }[kind]
            before = stored()
            response = client.request(method, path, content=content, headers=headers)
            assert response.status_code < 500, response.text
            if response.is_redirect:  # a reference ending in "/": Starlette's slash redirect
                assert "location" in response.headers
                return
            body = response.json()
            assert isinstance(body, dict) and isinstance(body.get("status_code"), int), body
            if body["status_code"] == 1000:
                return
            # OCPI's own code for a version we do not serve is 3002; any other refusal is 2xxx.
            assert 2000 <= body["status_code"] < 3000 or body["status_code"] == 3002, body
            assert stored() == before, f"{body}: stored all the same"
            if kind == "result":
                assert _results(client, ids) == results, f"{body}: changed a command"

        one()


async def test_cpo_pushes_get_an_envelope_and_a_refusal_changes_nothing(target: Target) -> None:
    api = EmspApi(target.base_url, target.operator_key)
    target.stub.timeout = 3600  # the commands stay open for results while the fuzzing lasts
    ids = [(await api.sent(PEER, "STOP_SESSION", {"session_id": f"S-{n}"}))["id"] for n in (1, 2)]
    response_urls = [c.body["response_url"] for c in await target.stub.wait_for_commands(2)]
    try:
        await in_thread(lambda: _fuzz(target, ids, response_urls))
    finally:
        record("eMSP receiver pushes", target.cases)

    # What was stored reads back: through the eMSP API and through OCPI to the CPO.
    async with httpx.AsyncClient(base_url=target.base_url) as client:
        operator = {"X-API-Key": target.operator_key}
        for path in ("/emsp/sessions?limit=500", "/emsp/cdrs?limit=500", "/emsp/commands"):
            listed = await client.get(path, headers=operator)
            assert listed.status_code == 200, listed.text
        for session_id in ("S-1", "S-2"):
            read = await client.get(
                f"/ocpi/emsp/{VERSION}/sessions/NL/STA/{session_id}", headers=target.cpo_headers()
            )
            assert read.status_code < 500 and isinstance(read.json()["status_code"], int)
        again = await client.put(
            f"/ocpi/emsp/{VERSION}/sessions/NL/STA/S-{uuid.uuid4().hex[:30]}",
            json={k: v for k, v in SESSION.items() if k != "id"},
            headers=target.cpo_headers(),
        )
        assert again.json()["status_code"] == 1000
        assert (await client.get("/healthz")).status_code == 200
