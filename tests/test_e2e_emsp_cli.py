"""`chargegate emsp …` as a person uses it: the CPO's answer at once, then waiting, then the
result, through the running gateway's API."""

from __future__ import annotations

import asyncio

from .conftest import Gateway
from .support.cli_process import run_cli, start_cli
from .support.emsp_fixtures import (
    api_key,
    connect_to_stub,
    emsp_database_url,
    emsp_gateway,
    stub_cpo,
)
from .support.stub_cpo import StubCpo

__all__ = ["emsp_database_url", "emsp_gateway", "stub_cpo"]  # fixtures used below


async def _line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    return (await asyncio.wait_for(process.stdout.readline(), 30)).decode().rstrip("\n")


async def test_start_session_wait_prints_answer_then_waits_then_result(
    stub_cpo: StubCpo, emsp_gateway: Gateway
) -> None:
    stub_cpo.versions, stub_cpo.timeout = ("2.2.1",), 30
    await connect_to_stub(stub_cpo, emsp_gateway)
    key = await api_key(emsp_gateway, "driver")
    process = await start_cli(
        emsp_gateway,
        "emsp",
        "start-session",
        "--peer",
        "NL-STB",
        "--location",
        "LOC-1",
        "--evse",
        "EVSE-1",
        "--token-uid",
        "04A1B2C3",
        "--wait",
        CHARGEGATE_API_KEY=key,
    )
    try:
        sent = await _line(process)
        assert sent.startswith("START_SESSION sent to NL-STB as command ")
        assert await _line(process) == "CPO answered: ACCEPTED"
        assert await _line(process) == "waiting for the result (the CPO allows 30 s) …"
        # Only now does the CPO's result arrive; the waiting process prints it.
        [command] = stub_cpo.commands
        assert command.body["token"]["uid"] == "04A1B2C3"
        await stub_cpo.call_emsp(
            "POST",
            command.body["response_url"],
            {"result": "EVSE_OCCUPIED", "message": [{"language": "en", "text": "in use"}]},
        )
        assert await _line(process) == "result: EVSE_OCCUPIED — in use"
        assert await asyncio.wait_for(process.wait(), 30) == 1  # not ACCEPTED
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_cli_refusals_are_clear(stub_cpo: StubCpo, emsp_gateway: Gateway) -> None:
    stub_cpo.versions = ("2.2.1",)
    await connect_to_stub(stub_cpo, emsp_gateway)
    driver = await api_key(emsp_gateway, "driver")
    code, out, err = await run_cli(
        emsp_gateway,
        "emsp",
        "unlock",
        "--peer",
        "NL-STB",
        "--location",
        "LOC-1",
        "--evse",
        "EVSE-1",
        "--connector",
        "1",
        CHARGEGATE_API_KEY=driver,
    )
    assert code == 2
    assert "HTTP 403: UNLOCK_CONNECTOR may only be requested by an operator" in err
    stub_cpo.answer, stub_cpo.answer_status = {"result": "UNKNOWN_SESSION"}, 1000
    code, out, err = await run_cli(
        emsp_gateway,
        "emsp",
        "stop-session",
        "--peer",
        "NL-STB",
        "--session-id",
        "S-404",
        "--wait",
        CHARGEGATE_API_KEY=driver,
    )
    assert code == 1, err
    lines = out.splitlines()
    assert lines[1:] == [
        "CPO answered: UNKNOWN_SESSION",
        "no result will follow: the CPO did not accept the command",
    ]
