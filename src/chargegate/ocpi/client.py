"""Calls we make to a peer's versions and version details during the credentials handshake."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from chargegate.service.emsp.ports import PeerApiError

from .outgoing import request_headers


@dataclass(frozen=True, slots=True)
class PeerEndpoints:
    version: str
    endpoints: dict[str, str]  # module identifier → URL of the peer's receiver interface


async def _get_data(client: httpx.AsyncClient, url: str, version: str, token: str) -> Any:
    headers = request_headers(version=version, token=token, functional=False)
    try:
        response = await client.get(url, headers=headers, timeout=15)
    except httpx.HTTPError as exc:
        raise PeerApiError(f"GET {url} failed: {exc}") from exc
    if response.status_code != 200:
        raise PeerApiError(f"GET {url} answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError as exc:
        raise PeerApiError(f"GET {url} did not answer JSON") from exc
    if not isinstance(body, dict) or body.get("status_code") != 1000:
        raise PeerApiError(f"GET {url} answered status_code {body.get('status_code')!r}")
    return body.get("data")


async def discover(
    client: httpx.AsyncClient, versions_url: str, version: str, token: str
) -> PeerEndpoints:
    """Find `version` in the peer's versions list and read its endpoints."""
    versions = await _get_data(client, versions_url, version, token)
    url = next(
        (
            v.get("url")
            for v in versions or []
            if isinstance(v, dict) and v.get("version") == version
        ),
        None,
    )
    if not url:
        raise PeerApiError(f"peer at {versions_url} does not list OCPI {version}")
    details = await _get_data(client, url, version, token)
    found: dict[str, str] = {}
    for endpoint in (details or {}).get("endpoints", []):
        identifier, target = endpoint.get("identifier"), endpoint.get("url")
        if not identifier or not target:
            continue
        # 2.2.1 lists a module once per role; we call the peer's RECEIVER side.
        if (
            version == "2.2.1"
            and identifier != "credentials"
            and endpoint.get("role") != "RECEIVER"
        ):
            continue
        found[identifier] = target
    return PeerEndpoints(version, found)
