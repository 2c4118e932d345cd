"""An operator's client of the remote-commands API."""

from __future__ import annotations

from typing import Any

import httpx


class OperatorClient:
    def __init__(self, base_url: str, key: str) -> None:
        self.base_url = base_url
        self.key = key

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-API-Key": self.key, **kwargs.pop("headers", {})}
        async with httpx.AsyncClient(timeout=30) as client:
            return await client.request(method, self.base_url + path, headers=headers, **kwargs)

    async def post(self, path: str, json: Any = None) -> httpx.Response:
        return await self.request("POST", path, json=json)

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.request("GET", path, params=params)

    async def connector_uuid(self, station_id: str, connector_id: int) -> str:
        station = (await self.get(f"/stations/{station_id}")).json()
        return next(c["uuid"] for c in station["connectors"] if c["connectorId"] == connector_id)
