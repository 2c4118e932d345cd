"""Schemathesis over the gateway's own OpenAPI document, against the real server on loopback:
every operation of the operator API, the eMSP API and the OCPI modules, each called with a valid
credential of the kind it takes, with data that fits the schema and data that does not. No
answer is a 5xx, a documented answer matches its schema, and the gateway still answers
afterwards."""

from __future__ import annotations

import traceback
from typing import Any

import httpx
import requests
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance

from .fuzz_counts import record
from .fuzz_target import VERSIONS, Target, fuzz_settings, in_thread, target

__all__ = ["target"]  # the fixture, used below

CHECKS = [not_a_server_error, response_schema_conformance]


def _streams(operation: schemathesis.APIOperation) -> bool:
    """Server-sent event streams stay open until the client leaves: not for a request/response
    fuzzer (tests/test_e2e_emsp_api.py covers them)."""
    ok = operation.definition.raw.get("responses", {}).get("200", {})
    return "text/event-stream" in ok.get("content", {})


def _negatable(operation: schemathesis.APIOperation) -> bool:
    """Whether the schema constrains anything a negative case could break: a body, a query or
    header parameter, or a path parameter that is not just any string."""
    raw = operation.definition.raw
    if "requestBody" in raw:
        return True
    return any(
        p["in"] != "path" or p.get("schema", {}).get("type") != "string"
        for p in raw.get("parameters", [])
    )


def _headers(target: Target, path: str) -> dict[str, str]:
    """A valid credential for the operation's path; the credentials endpoints get a party of
    their own (a DELETE there unregisters it)."""
    if path.startswith("/ocpi/emsp/"):
        stub = target.spare_stub if path.endswith("/credentials") else target.stub
        return target.cpo_headers(stub)
    if path.startswith("/ocpi/"):
        if path.endswith("/credentials"):
            return {"Authorization": f"Token {target.spare_emsp.token_c}"}
        return target.ocpi_headers("2.2.1")
    return {"X-API-Key": target.operator_key}


def _strategy(operation: schemathesis.APIOperation, mode: GenerationMode) -> Any:
    """Cases of `operation`; OCPI paths also with each version we serve, so the fuzzing gets
    past the version check into the module."""
    strategies = [operation.as_strategy(generation_mode=mode)]
    if "{version}" in operation.path:
        strategies += [
            operation.as_strategy(generation_mode=mode, path_parameters={"version": v})
            for v in VERSIONS
        ]
    return st.one_of(strategies)


def _run(
    target: Target,
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    session: requests.Session,
) -> None:
    headers = _headers(target, operation.path)

    @fuzz_settings()
    @given(case=_strategy(operation, mode))
    def one(case: schemathesis.Case) -> None:
        target.cases += 1
        case.call_and_validate(
            base_url=target.base_url, session=session, headers=headers, checks=CHECKS, timeout=30
        )

    one()


def _fuzz(target: Target, schema: schemathesis.BaseSchema) -> None:
    session = requests.Session()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # our own schema must load
        operation = result.ok()
        if _streams(operation):
            continue
        modes = [GenerationMode.POSITIVE]
        if _negatable(operation):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            try:
                _run(target, operation, mode, session)
            except Unsatisfiable:  # nothing in the schema a negative case could break
                continue
            # Every failing operation is listed, not only the first; schemathesis reports its
            # findings as a BaseExceptionGroup.
            except (Exception, BaseExceptionGroup) as exc:
                found = "".join(traceback.format_exception_only(exc))
                target.failures.append(f"{operation.label} ({mode.value}): {found}"[:3000])


async def test_openapi_operations_never_answer_5xx(target: Target) -> None:
    async with httpx.AsyncClient() as client:
        document = (await client.get(f"{target.base_url}/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(document)
    try:
        await in_thread(lambda: _fuzz(target, schema))
    finally:
        record("schemathesis cases", target.cases)
    assert not target.failures, "\n\n".join(target.failures)
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{target.base_url}/healthz")).status_code == 200
        ocpi = await client.get(
            f"{target.base_url}/ocpi/cpo/2.2.1/locations", headers=target.ocpi_headers("2.2.1")
        )
        assert ocpi.json()["status_code"] == 1000  # the fuzzing left the parties registered
