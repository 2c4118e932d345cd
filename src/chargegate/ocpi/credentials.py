"""Credentials module, both versions: the token A → B → C handshake, update and unregister."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from chargegate.gateway import gateway_of
from chargegate.service.parties import Caller
from chargegate.settings import Settings

from . import status
from .auth import AnyCaller
from .client import discover
from .envelope import NotRegistered, OcpiError, Unauthorized, ocpi_response, read_model
from .versions import VERSIONS, base

router = APIRouter(prefix="/ocpi", tags=["OCPI credentials"])

log = logging.getLogger(__name__)

# The one answer to a handshake whose versions URL or endpoints we cannot use, whatever failed.
UNUSABLE_API = (
    "Unable to use the client's API: its versions URL, version details or endpoints could not "
    "be reached, were not allowed or did not answer as OCPI requires. The CPO's operator can "
    "see why in the gateway's log."
)

_TOKEN_CHARS = r"^[\x21-\x7e]+$"  # printable ASCII, no whitespace (2.2.1 credentials)


class _BusinessDetails(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(max_length=100)


class _Role221(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    business_details: _BusinessDetails
    party_id: str = Field(min_length=3, max_length=3)
    country_code: str = Field(min_length=2, max_length=2)


class Credentials211(BaseModel):
    model_config = ConfigDict(extra="allow")
    token: str = Field(min_length=1, max_length=64, pattern=_TOKEN_CHARS)
    url: str = Field(max_length=255, pattern=r"^https?://")
    business_details: _BusinessDetails
    party_id: str = Field(min_length=3, max_length=3)
    country_code: str = Field(min_length=2, max_length=2)


class Credentials221(BaseModel):
    model_config = ConfigDict(extra="allow")
    token: str = Field(min_length=1, max_length=64, pattern=_TOKEN_CHARS)
    url: str = Field(max_length=255, pattern=r"^https?://")
    roles: list[_Role221] = Field(min_length=1)


def _ours(settings: Settings, version: str, token: str) -> dict[str, Any]:
    business = {"name": settings.business_name}
    url = f"{base(settings)}/versions"
    if version == "2.1.1":
        return {
            "token": token,
            "url": url,
            "business_details": business,
            "party_id": settings.party_id,
            "country_code": settings.country_code,
        }
    return {
        "token": token,
        "url": url,
        "roles": [
            {
                "role": "CPO",
                "business_details": business,
                "party_id": settings.party_id,
                "country_code": settings.country_code,
            }
        ],
    }


def _check_version(version: str) -> None:
    if version not in VERSIONS:
        raise OcpiError(status.UNSUPPORTED_VERSION, f"unsupported version {version!r}", 404)


async def _handshake(request: Request, version: str, caller: Caller) -> Response:
    """Read the peer's credentials, call its versions with token B, answer with a new token C."""
    model: type[Credentials211 | Credentials221] = (
        Credentials211 if version == "2.1.1" else Credentials221
    )
    creds = await read_model(request, model)
    party = caller.party
    if isinstance(creds, Credentials211):
        identities = {(creds.country_code.upper(), creds.party_id.upper())}
        business: dict[str, Any] | None = creds.business_details.model_dump()
    else:
        identities = {(r.country_code.upper(), r.party_id.upper()) for r in creds.roles}
        business = creds.roles[0].business_details.model_dump()
    if (party.country_code, party.party_id) not in identities:
        raise OcpiError(
            status.INVALID_PARAMETERS,
            f"credentials name {sorted(identities)}, but this token was issued to "
            f"{party.country_code}/{party.party_id}",
        )
    gateway = gateway_of(request)
    if caller.with_token_a and not await gateway.parties.claim_token_a(party.id, caller.token):
        # Another handshake with this token A got it first (or finished already).
        raise Unauthorized("unknown token")
    registered = False
    try:
        try:
            found = await discover(gateway.http, creds.url, version, creds.token)
            for url in found.endpoints.values():
                await gateway.egress.check_url(url)  # what we would call later is checked now
        except Exception as exc:  # any failure of their API answers alike
            # The detail stays here: told to the caller, it would tell closed ports, other
            # services and status codes apart (a port scanner for anyone with a token A).
            log.warning(
                "credentials %s by %s/%s: cannot use %s: %s",
                request.method,
                party.country_code,
                party.party_id,
                creds.url,
                exc,
            )
            raise OcpiError(status.UNABLE_TO_USE_CLIENT_API, UNUSABLE_API) from exc
        token_c = await gateway.parties.register(
            party.id,
            token_b=creds.token,
            versions_url=creds.url,
            version=version,
            endpoints=found.endpoints,
            business_details=business,
        )
        registered = True
    finally:
        # Whatever ended the handshake before it registered (their API, our database, the
        # client going away), token A works again; shielded, as a cancelled request ends here.
        if caller.with_token_a and not registered:
            await asyncio.shield(gateway.parties.restore_token_a(party.id, caller.token))
    return ocpi_response(_ours(gateway.settings, version, token_c))


@router.get("/{version}/credentials", summary="Our credentials, as the caller should use them")
async def get_credentials(version: str, request: Request, caller: AnyCaller) -> Response:
    _check_version(version)
    return ocpi_response(_ours(gateway_of(request).settings, version, caller.token))


@router.post("/{version}/credentials", summary="Register: token A in, token C out")
async def post_credentials(version: str, request: Request, caller: AnyCaller) -> Response:
    _check_version(version)
    if not caller.with_token_a:
        raise NotRegistered("already registered; use PUT to update or DELETE to unregister")
    return await _handshake(request, version, caller)


@router.put("/{version}/credentials", summary="Update credentials or switch version")
async def put_credentials(version: str, request: Request, caller: AnyCaller) -> Response:
    _check_version(version)
    if caller.with_token_a:
        raise NotRegistered("not registered yet; POST your credentials first")
    return await _handshake(request, version, caller)


@router.delete("/{version}/credentials", summary="Unregister")
async def delete_credentials(version: str, request: Request, caller: AnyCaller) -> Response:
    _check_version(version)
    if caller.with_token_a:
        raise NotRegistered("not registered; nothing to delete")
    await gateway_of(request).parties.unregister(caller.party.id)
    return ocpi_response()
