"""The eMSP's requests to the gateway under test."""

from __future__ import annotations

from typing import Any

import httpx

from .emsp import FakeEmsp


class OcpiClient:
    def __init__(self, gateway_url: str, emsp: FakeEmsp) -> None:
        self.gateway_url = gateway_url
        self.emsp = emsp

    @property
    def version(self) -> str:
        return self.emsp.version

    async def command(self, command: str, body: Any) -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await client.post(
                f"{self.gateway_url}/ocpi/cpo/{self.version}/commands/{command}",
                json=body,
                headers=self.emsp.headers(),
            )

    async def get(self, path: str, **params: Any) -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await client.get(
                f"{self.gateway_url}/ocpi/cpo/{self.version}/{path}",
                params=params,
                headers=self.emsp.headers(),
            )
