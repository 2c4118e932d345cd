"""An eMSP backend's client of chargegate's eMSP command API (REST and SSE)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx


class EmspApi:
    def __init__(self, base_url: str, key: str) -> None:
        self.base_url = base_url
        self.key = key

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-API-Key": self.key, **kwargs.pop("headers", {})}
        async with httpx.AsyncClient(timeout=30) as client:
            return await client.request(method, self.base_url + path, headers=headers, **kwargs)

    async def command(
        self,
        peer: str,
        command: str,
        body: dict[str, Any],
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return await self.request(
            "POST", f"/emsp/peers/{peer}/commands/{command}", json=body, headers=headers
        )

    async def sent(self, peer: str, command: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a command that must be taken (201); its view."""
        response = await self.command(peer, command, body)
        assert response.status_code == 201, response.text
        view: dict[str, Any] = response.json()
        return view

    async def get(self, command_id: str) -> dict[str, Any]:
        response = await self.request("GET", f"/emsp/commands/{command_id}")
        assert response.status_code == 200, response.text
        view: dict[str, Any] = response.json()
        return view

    async def events(self, command_id: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The command's SSE stream from its start until it is final."""
        return await asyncio.wait_for(self.stream(f"/emsp/commands/{command_id}/events"), timeout)

    async def stream(
        self,
        path: str,
        *,
        count: int | None = None,
        until: Any = None,
        headers: dict[str, str] | None = None,
        connected: asyncio.Event | None = None,
    ) -> list[dict[str, Any]]:
        """Read SSE events until the server ends the stream, `count` of them arrived, or one
        satisfies `until`. `connected` is set at the stream's first line (its `retry:`), sent
        once the server has fixed where the stream starts."""
        found: list[dict[str, Any]] = []
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as client,
            client.stream(
                "GET", self.base_url + path, headers={"X-API-Key": self.key, **(headers or {})}
            ) as response,
        ):
            assert response.status_code == 200, await response.aread()
            assert response.headers["content-type"].startswith("text/event-stream")
            event: dict[str, Any] = {}
            async for line in response.aiter_lines():
                if connected is not None:
                    connected.set()
                if line.startswith("id:"):
                    event["sse_id"] = line[3:].strip()
                elif line.startswith("event:"):
                    event["sse_event"] = line[6:].strip()
                elif line.startswith("data:"):
                    event.update(json.loads(line[5:]))
                elif line == "" and "sse_event" in event:
                    found.append(event)
                    event = {}
                    if count is not None and len(found) >= count:
                        break
                    if until is not None and until(found[-1]):
                        break
        return found

    async def wait_for(
        self, command_id: str, predicate: Any, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Poll the command until `predicate(view)` holds."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            view = await self.get(command_id)
            if predicate(view):
                return view
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out; last view: {view}")
            await asyncio.sleep(0.05)
