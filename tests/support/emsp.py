"""A small eMSP for tests: serves versions/endpoints, does the handshake, records callbacks."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .servers import LiveServer


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeEmsp:
    country_code: str = "NL"
    party_id: str = "EMS"
    token_b: str = field(default_factory=lambda: "tokenB-" + uuid.uuid4().hex)
    received: list[Received] = field(default_factory=list)
    fail_next: int = 0  # answer this many callbacks with HTTP 500 first
    list_sessions_receiver: bool = True
    server: LiveServer | None = None
    token_c: str | None = None
    version: str = "2.2.1"
    # Callbacks this predicate picks are refused for good (HTTP 422, OCPI 2001): a poison item.
    refuse: Callable[[Received], bool] | None = None
    # Callbacks this predicate picks get no answer until `release()` (a peer that hangs).
    hang: Callable[[Received], bool] | None = None
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        """Let every hanging callback answer (so the server can stop)."""
        self._released.set()

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return self.server.base_url

    def auth_ok(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        expected_plain = f"Token {self.token_b}"
        expected_b64 = "Token " + base64.b64encode(self.token_b.encode()).decode()
        return header == (expected_b64 if self.version == "2.2.1" else expected_plain)

    def app(self) -> Starlette:
        async def versions(request: Request) -> JSONResponse:
            if not self.auth_ok(request):
                return JSONResponse({"status_code": 2000}, status_code=401)
            return _ok(
                [
                    {"version": "2.1.1", "url": f"{self.base_url}/ocpi/2.1.1"},
                    {"version": "2.2.1", "url": f"{self.base_url}/ocpi/2.2.1"},
                ]
            )

        async def details(request: Request) -> JSONResponse:
            if not self.auth_ok(request):
                return JSONResponse({"status_code": 2000}, status_code=401)
            version = request.path_params["version"]
            endpoints: list[dict[str, str]] = [
                {"identifier": "credentials", "url": f"{self.base_url}/ocpi/{version}/credentials"},
                {"identifier": "commands", "url": f"{self.base_url}/ocpi/emsp/{version}/commands"},
            ]
            if self.list_sessions_receiver:
                endpoints.append(
                    {
                        "identifier": "sessions",
                        "url": f"{self.base_url}/ocpi/emsp/{version}/sessions",
                    }
                )
                endpoints.append(
                    {"identifier": "cdrs", "url": f"{self.base_url}/ocpi/emsp/{version}/cdrs"}
                )
            if version == "2.2.1":
                for e in endpoints:
                    e["role"] = (
                        "SENDER" if e["identifier"] in ("commands", "credentials") else "RECEIVER"
                    )
            return _ok({"version": version, "endpoints": endpoints})

        async def receive(request: Request) -> JSONResponse:
            raw = await request.body()
            try:
                body: Any = await request.json() if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            arrival = Received(request.method, request.url.path, dict(request.headers), body)
            async with self._arrived:
                self.received.append(arrival)
                self._arrived.notify_all()
            if not self.auth_ok(request):
                return JSONResponse({"status_code": 2000}, status_code=401)
            if self.hang is not None and self.hang(arrival):
                await self._released.wait()
                return JSONResponse({"status_code": 3000}, status_code=503)
            if self.refuse is not None and self.refuse(arrival):
                return JSONResponse(
                    {"status_code": 2001, "status_message": "invalid object"}, status_code=422
                )
            if self.fail_next > 0:
                self.fail_next -= 1
                return JSONResponse(
                    {"status_code": 3000, "status_message": "down"}, status_code=500
                )
            return _ok({})

        return Starlette(
            routes=[
                Route("/ocpi/versions", versions),
                Route("/ocpi/{version}", details),
                Route("/ocpi/emsp/{rest:path}", receive, methods=["POST", "PUT", "PATCH"]),
            ]
        )

    async def start(self) -> FakeEmsp:
        self.server = await LiveServer(self.app()).start()
        return self

    async def stop(self) -> None:
        self.release()
        if self.server is not None:
            await self.server.stop()

    def response_url(self, command: str, ref: str | None = None) -> str:
        return (
            f"{self.base_url}/ocpi/emsp/{self.version}/commands/{command}/{ref or uuid.uuid4().hex}"
        )

    async def register(self, gateway_url: str, token_a: str, version: str = "2.2.1") -> str:
        """The credentials handshake as the eMSP side: POST our token B, keep token C."""
        self.version = version
        if version == "2.1.1":
            creds: dict[str, Any] = {
                "token": self.token_b,
                "url": f"{self.base_url}/ocpi/versions",
                "business_details": {"name": "Test eMSP"},
                "party_id": self.party_id,
                "country_code": self.country_code,
            }
        else:
            creds = {
                "token": self.token_b,
                "url": f"{self.base_url}/ocpi/versions",
                "roles": [
                    {
                        "role": "EMSP",
                        "business_details": {"name": "Test eMSP"},
                        "party_id": self.party_id,
                        "country_code": self.country_code,
                    }
                ],
            }
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"{gateway_url}/ocpi/{version}/credentials",
                json=creds,
                headers={"Authorization": auth_header(version, token_a)},
            )
        body = response.json()
        assert response.status_code == 200 and body["status_code"] == 1000, body
        self.token_c = body["data"]["token"]
        return self.token_c

    def headers(self, **extra: str) -> dict[str, str]:
        assert self.token_c is not None
        return {"Authorization": auth_header(self.version, self.token_c), **extra}

    async def wait_for(
        self, path_part: str, count: int = 1, timeout: float = 10.0
    ) -> list[Received]:
        async def enough() -> list[Received]:
            async with self._arrived:
                await self._arrived.wait_for(
                    lambda: len([r for r in self.received if path_part in r.path]) >= count
                )
                return [r for r in self.received if path_part in r.path]

        return await asyncio.wait_for(enough(), timeout)


def auth_header(version: str, token: str) -> str:
    if version == "2.2.1":
        return "Token " + base64.b64encode(token.encode()).decode()
    return f"Token {token}"


def _ok(data: Any) -> JSONResponse:
    return JSONResponse(
        {
            "data": data,
            "status_code": 1000,
            "status_message": "Success",
            "timestamp": "2026-01-01T00:00:00Z",
        }
    )
