"""The credentials handshake from the initiating side: we call the peer with its token A.

GET their versions, pick the newest version both sides speak, GET its endpoints, POST our
credentials (our versions URL and the token B we issued) and read back their token C."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import ValidationError

from chargegate.service.emsp.identity import our_business_name, our_party
from chargegate.service.emsp.ports import (
    Identity,
    PeerApiError,
    Registration,
    TheirCredentials,
)
from chargegate.settings import Settings

from ..credentials import Credentials211, Credentials221
from ..envelope import validation_message
from ..outgoing import request_headers
from .versions import VERSIONS, versions_url

_TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class Auth:
    """A token as the peer wants it: Base64 in 2.2.1 unless the peer only takes it plain."""

    token: str
    version: str | None = None  # None before a version is chosen
    plain: bool = False

    def headers(self) -> dict[str, str]:
        headers = request_headers(
            version=self.version or "2.2.1", token=self.token, functional=False
        )
        if self.plain or self.version == "2.1.1":
            headers["Authorization"] = f"Token {self.token}"
        return headers


async def _call(
    client: httpx.AsyncClient, method: str, url: str, auth: Auth, body: Any = None
) -> httpx.Response:
    try:
        return await client.request(
            method, url, headers=auth.headers(), json=body, timeout=_TIMEOUT
        )
    except httpx.HTTPError as exc:
        raise PeerApiError(f"{method} {url} failed: {type(exc).__name__}: {exc}") from exc


def _data(response: httpx.Response, what: str) -> Any:
    if response.status_code != 200:
        hint = " (is the token right, and still unused?)" if response.status_code == 401 else ""
        raise PeerApiError(
            f"{what} answered HTTP {response.status_code}{hint}: {response.text[:200]}"
        )
    try:
        body = response.json()
    except ValueError as exc:
        raise PeerApiError(f"{what} did not answer JSON") from exc
    if not isinstance(body, dict) or body.get("status_code") != 1000:
        message = body.get("status_message") if isinstance(body, dict) else None
        code = body.get("status_code") if isinstance(body, dict) else None
        raise PeerApiError(f"{what} answered status_code {code!r}: {message or body!r}")
    return body.get("data")


async def fetch_versions(
    client: httpx.AsyncClient, versions_url: str, token: str
) -> tuple[list[dict[str, Any]], bool]:
    """The peer's versions and whether it wants the token plain. Base64 first (2.2.1 SHALL);
    after a 401, plain, as 2.1.1 and many 2.2.1 peers expect (transport_and_format NOTE)."""
    response = await _call(client, "GET", versions_url, Auth(token))
    plain = False
    if response.status_code == 401:
        plain = True
        response = await _call(client, "GET", versions_url, Auth(token, plain=True))
    data = _data(response, f"GET {versions_url}")
    if not isinstance(data, list):
        raise PeerApiError(f"GET {versions_url} answered no list of versions: {data!r}")
    return [v for v in data if isinstance(v, dict)], plain


def choose_version(
    versions: list[dict[str, Any]], versions_url: str, *, only: str | None = None
) -> tuple[str, str]:
    """The newest version both sides list (or `only`), and the URL of its details."""
    theirs = {str(v.get("version")): v.get("url") for v in versions}
    for version in VERSIONS if only is None else (only,):
        url = theirs.get(version)
        if url and version in VERSIONS:
            return version, str(url)
    wanted = only or ", ".join(VERSIONS)
    raise PeerApiError(
        f"no common OCPI version: {versions_url} lists {', '.join(sorted(theirs)) or 'none'}, "
        f"we want {wanted}"
    )


async def fetch_endpoints(
    client: httpx.AsyncClient, details_url: str, auth: Auth
) -> dict[str, str]:
    """module identifier → URL of the peer's interface we call (2.2.1: its RECEIVER side)."""
    details = _data(await _call(client, "GET", details_url, auth), f"GET {details_url}")
    found: dict[str, str] = {}
    for endpoint in (details or {}).get("endpoints", []) if isinstance(details, dict) else []:
        identifier, url = endpoint.get("identifier"), endpoint.get("url")
        if not identifier or not url:
            continue
        if (
            auth.version == "2.2.1"
            and identifier != "credentials"
            and endpoint.get("role") != "RECEIVER"
        ):
            continue
        found[identifier] = url
    if "credentials" not in found:
        raise PeerApiError(f"GET {details_url} lists no credentials endpoint")
    return found


async def send_credentials(
    client: httpx.AsyncClient, method: str, url: str, auth: Auth, ours: dict[str, Any]
) -> TheirCredentials:
    """POST (register) or PUT (update) our credentials; the answer carries the peer's."""
    data = _data(await _call(client, method, url, auth, ours), f"{method} {url}")
    return parse_credentials(data, auth.version or "2.2.1", f"{method} {url}")


def parse_credentials(data: Any, version: str, what: str) -> TheirCredentials:
    try:
        if version == "2.1.1":
            c211 = Credentials211.model_validate(data)
            identity = Identity(
                "CPO",
                c211.country_code.upper(),
                c211.party_id.upper(),
                c211.business_details.model_dump(),
            )
            return TheirCredentials(c211.token, c211.url, [identity])
        c221 = Credentials221.model_validate(data)
    except ValidationError as exc:
        raise PeerApiError(
            f"{what} answered credentials we cannot use: {validation_message(exc)}"
        ) from exc
    identities = [
        Identity(
            r.role, r.country_code.upper(), r.party_id.upper(), r.business_details.model_dump()
        )
        for r in c221.roles
    ]
    return TheirCredentials(c221.token, c221.url, identities)


def our_credentials(settings: Settings, version: str, token: str) -> dict[str, Any]:
    country_code, party_id = our_party(settings)
    business = {"name": our_business_name(settings)}
    if version == "2.1.1":
        return {
            "token": token,
            "url": versions_url(settings),
            "business_details": business,
            "party_id": party_id,
            "country_code": country_code,
        }
    return {
        "token": token,
        "url": versions_url(settings),
        "roles": [
            {
                "role": "EMSP",
                "business_details": business,
                "party_id": party_id,
                "country_code": country_code,
            }
        ],
    }


class OcpiHandshake:
    """The eMSP role's credentials handshake with a CPO (`CpoHandshake`)."""

    def __init__(self, client: httpx.AsyncClient, settings: Settings) -> None:
        self._client = client
        self._settings = settings

    async def register(
        self, versions_url: str, token_a: str, token_b: str, *, version: str | None
    ) -> Registration:
        versions, plain = await fetch_versions(self._client, versions_url, token_a)
        chosen, details_url = choose_version(versions, versions_url, only=version)
        auth = Auth(token_a, chosen, plain)
        endpoints = await fetch_endpoints(self._client, details_url, auth)
        theirs = await send_credentials(
            self._client,
            "POST",
            endpoints["credentials"],
            auth,
            our_credentials(self._settings, chosen, token_b),
        )
        return Registration(chosen, plain, endpoints, theirs)

    async def endpoints(
        self, versions_url: str, token: str, version: str
    ) -> tuple[dict[str, str], bool]:
        versions, plain = await fetch_versions(self._client, versions_url, token)
        details_url = next(
            (str(v["url"]) for v in versions if v.get("version") == version and v.get("url")),
            None,
        )
        if details_url is None:
            raise PeerApiError(f"{versions_url} does not list OCPI {version}")
        endpoints = await fetch_endpoints(self._client, details_url, Auth(token, version, plain))
        return endpoints, plain
