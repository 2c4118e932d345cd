"""The command POST is answered by ocpi/command_lane.py ahead of FastAPI's router; the FastAPI
route it shadows (kept for the OpenAPI document) must answer exactly alike, and everything the
lane does not match must still reach the router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chargegate.app import create_app

from .conftest import Gateway
from .support.commands import start_session
from .support.emsp import FakeEmsp
from .support.servers import LiveServer


async def _gateway(tmp_path: Path, name: str, lane: bool) -> Gateway:
    gateway = Gateway(f"sqlite+aiosqlite:///{tmp_path / name}.db")
    if not lane:
        gateway.app = create_app(gateway.settings, command_lane=False)
        gateway.server = LiveServer(gateway.app, gateway.sock)
    return await gateway.start()


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[Gateway, Gateway]]:
    with_lane = await _gateway(tmp_path, "lane", lane=True)
    without = await _gateway(tmp_path, "route", lane=False)
    try:
        yield with_lane, without
    finally:
        await with_lane.stop()
        await without.stop()


def _comparable(response: httpx.Response) -> tuple[int, Any, dict[str, str]]:
    body = response.json()
    body.pop("timestamp", None)
    headers = {k: v for k, v in response.headers.items() if k.startswith("ocpi-")}
    return response.status_code, body, headers


@pytest.mark.parametrize("version", ["2.1.1", "2.2.1"])
async def test_lane_and_route_answer_alike(
    pair: tuple[Gateway, Gateway], emsp: FakeEmsp, version: str
) -> None:
    answers: list[list[tuple[int, Any, dict[str, str]]]] = []
    for gateway in pair:
        await emsp.register(gateway.base_url, await gateway.add_party(), version)
        base = f"{gateway.base_url}/ocpi/cpo/{version}/commands"
        start = start_session(version, emsp.response_url("START_SESSION"), "NO-SUCH-CP")
        async with httpx.AsyncClient(headers=emsp.headers()) as client:
            answers.append(
                [
                    _comparable(await client.post(f"{base}/START_SESSION", json=start)),
                    _comparable(await client.post(f"{base}/START_SESSION", json={})),
                    _comparable(await client.post(f"{base}/START_SESSION", content=b"{no")),
                    _comparable(await client.post(f"{base}/FLY_AWAY", json=start)),
                    _comparable(
                        await client.post(
                            f"{gateway.base_url}/ocpi/cpo/9.9/commands/START_SESSION", json=start
                        )
                    ),
                    _comparable(
                        await client.post(
                            f"{base}/START_SESSION", json=start, headers={"Authorization": "x"}
                        )
                    ),
                ]
            )
    with_lane, without = answers
    assert with_lane == without
    assert [status for status, _, _ in with_lane] == [200, 200, 400, 404, 404, 401]


async def test_what_the_lane_does_not_match_reaches_the_router(
    pair: tuple[Gateway, Gateway], emsp: FakeEmsp
) -> None:
    gateway = pair[0]
    await emsp.register(gateway.base_url, await gateway.add_party(), "2.2.1")
    base = f"{gateway.base_url}/ocpi/cpo/2.2.1/commands"
    async with httpx.AsyncClient(headers=emsp.headers()) as client:
        wrong_method = await client.get(f"{base}/START_SESSION")
        deeper = await client.post(f"{base}/START_SESSION/extra", json={})
    assert (wrong_method.status_code, wrong_method.json()["status_code"]) == (405, 2000)
    assert (deeper.status_code, deeper.json()["status_code"]) == (404, 2000)
    assert wrong_method.headers["x-request-id"]  # the request-id middleware still wraps both


async def test_an_unexpected_error_is_an_ocpi_500_on_both_paths(
    pair: tuple[Gateway, Gateway], emsp: FakeEmsp, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    answers = []
    for gateway in pair:
        await emsp.register(gateway.base_url, await gateway.add_party(), "2.2.1")
        gateway.state.commands.submit = broken
        start = start_session("2.2.1", emsp.response_url("START_SESSION"), "CP-1")
        async with httpx.AsyncClient(headers=emsp.headers()) as client:
            answer = await client.post(
                f"{gateway.base_url}/ocpi/cpo/2.2.1/commands/START_SESSION", json=start
            )
        answers.append(answer)
    for answer in answers:
        assert answer.status_code == 500
        assert answer.json()["status_code"] == 3000
        assert "disk on fire" not in answer.text  # details go to the log, not to the caller
        assert answer.headers["x-request-id"]
    assert "disk on fire" in caplog.text
