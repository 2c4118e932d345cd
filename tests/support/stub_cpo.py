"""A scripted CPO for eMSP tests: it takes part in the credentials handshake like a real one,
records every command exactly as it arrived, answers what the test says, and POSTs results,
Sessions and CDRs to the eMSP when the test says so (or never)."""

from __future__ import annotations

import asyncio
import base64
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .servers import LiveServer


@dataclass
class Arrival:
    method: str
    path: str
    headers: dict[str, str]
    text: str
    body: Any


@dataclass
class StubCpo:
    versions: tuple[str, ...] = ("2.1.1", "2.2.1")
    country_code: str = "NL"
    party_id: str = "STB"
    token_a: str = field(default_factory=lambda: "tokenA-" + uuid.uuid4().hex)
    token_c: str = field(default_factory=lambda: "tokenC-" + uuid.uuid4().hex)
    # The CommandResponse `data` to answer with; None: ACCEPTED (with a timeout in 2.2.1).
    answer: Any = None
    answer_status: int = 1000
    timeout: int = 1
    base64_tokens: bool = True  # False: a peer that refuses Base64 tokens (401)
    # A body to POST to the response_url before answering the command: the result beats the
    # synchronous answer, as it can with a fast charge point.
    result_first: Any = None
    token_b: str | None = None
    version: str | None = None  # the version the eMSP registered with
    emsp_endpoints: dict[str, str] = field(default_factory=dict)
    commands: list[Arrival] = field(default_factory=list)
    server: LiveServer | None = None
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return self.server.base_url

    @property
    def versions_url(self) -> str:
        return f"{self.base_url}/ocpi/versions"

    def _token(self, request: Request) -> str | None:
        scheme, _, raw = request.headers.get("authorization", "").partition(" ")
        if scheme != "Token" or not raw:
            return None
        if raw in (self.token_a, self.token_c):
            return raw
        if not self.base64_tokens:
            return None
        try:
            decoded = base64.b64decode(raw, validate=True).decode()
        except ValueError:
            return None
        return decoded if decoded in (self.token_a, self.token_c) else None

    def app(self) -> Starlette:
        async def versions(request: Request) -> JSONResponse:
            if self._token(request) is None:
                return JSONResponse({"status_code": 2000}, status_code=401)
            return _ok([{"version": v, "url": f"{self.base_url}/ocpi/{v}"} for v in self.versions])

        async def details(request: Request) -> JSONResponse:
            if self._token(request) is None:
                return JSONResponse({"status_code": 2000}, status_code=401)
            version = request.path_params["version"]
            endpoints = [
                {"identifier": "credentials", "url": f"{self.base_url}/ocpi/{version}/credentials"},
                {"identifier": "commands", "url": f"{self.base_url}/ocpi/cpo/{version}/commands/"},
            ]
            if version == "2.2.1":
                endpoints[0]["role"] = "SENDER"
                endpoints[1]["role"] = "RECEIVER"
            return _ok({"version": version, "endpoints": endpoints})

        async def credentials(request: Request) -> JSONResponse:
            if self._token(request) != self.token_a:
                return JSONResponse({"status_code": 2000}, status_code=401)
            version = request.path_params["version"]
            theirs = await request.json()
            self.token_b, self.version = theirs["token"], version
            # Like a real CPO: read the eMSP's endpoints with token B before answering.
            async with httpx.AsyncClient() as client:
                auth = self.auth_header(self.token_b)
                listed = (await client.get(theirs["url"], headers={"Authorization": auth})).json()
                url = next(v["url"] for v in listed["data"] if v["version"] == version)
                found = (await client.get(url, headers={"Authorization": auth})).json()
            self.emsp_endpoints = {e["identifier"]: e["url"] for e in found["data"]["endpoints"]}
            business = {"name": "Stub CPO"}
            if version == "2.1.1":
                ours: dict[str, Any] = {
                    "token": self.token_c,
                    "url": self.versions_url,
                    "business_details": business,
                    "party_id": self.party_id,
                    "country_code": self.country_code,
                }
            else:
                ours = {
                    "token": self.token_c,
                    "url": self.versions_url,
                    "roles": [
                        {
                            "role": "CPO",
                            "business_details": business,
                            "party_id": self.party_id,
                            "country_code": self.country_code,
                        }
                    ],
                }
            return _ok(ours)

        async def command(request: Request) -> JSONResponse:
            text = (await request.body()).decode()
            async with self._arrived:
                self.commands.append(
                    Arrival(
                        request.method,
                        request.url.path,
                        dict(request.headers),
                        text,
                        await request.json(),
                    )
                )
                self._arrived.notify_all()
            if self._token(request) != self.token_c:
                return JSONResponse({"status_code": 2000}, status_code=401)
            if self.result_first is not None:
                posted = await self.call_emsp(
                    "POST", self.commands[-1].body["response_url"], self.result_first
                )
                assert posted.json()["status_code"] == 1000, posted.text
            data = self.answer
            if data is None:
                data = {"result": "ACCEPTED"}
                if request.path_params["version"] == "2.2.1":
                    data["timeout"] = self.timeout
            status_message = "Success" if self.answer_status == 1000 else "Error"
            return JSONResponse(
                {
                    "data": data,
                    "status_code": self.answer_status,
                    "status_message": status_message,
                    "timestamp": "2026-01-01T00:00:00Z",
                }
            )

        return Starlette(
            routes=[
                Route("/ocpi/versions", versions),
                Route("/ocpi/{version}", details),
                Route("/ocpi/{version}/credentials", credentials, methods=["POST"]),
                Route("/ocpi/cpo/{version}/commands/{command}", command, methods=["POST"]),
            ]
        )

    async def start(self) -> StubCpo:
        self.server = await LiveServer(self.app()).start()
        return self

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()

    def auth_header(self, token: str) -> str:
        if self.version == "2.2.1" and self.base64_tokens:
            return "Token " + base64.b64encode(token.encode()).decode()
        return f"Token {token}"

    async def wait_for_commands(self, count: int = 1, timeout: float = 10.0) -> list[Arrival]:
        async def enough() -> list[Arrival]:
            async with self._arrived:
                await self._arrived.wait_for(lambda: len(self.commands) >= count)
                return list(self.commands)

        return await asyncio.wait_for(enough(), timeout)

    async def call_emsp(
        self,
        method: str,
        url: str,
        body: Any = None,
        *,
        content: bytes | None = None,
        token: str | None = None,
    ) -> httpx.Response:
        """A request to the eMSP with token B, as this CPO makes them."""
        assert self.token_b is not None
        headers = {"Authorization": self.auth_header(token or self.token_b)}
        async with httpx.AsyncClient() as client:
            if content is not None:
                headers["Content-Type"] = "application/json"
                return await client.request(method, url, content=content, headers=headers)
            return await client.request(method, url, json=body, headers=headers)


def _ok(data: Any) -> JSONResponse:
    return JSONResponse(
        {
            "data": data,
            "status_code": 1000,
            "status_message": "Success",
            "timestamp": "2026-01-01T00:00:00Z",
        }
    )
