"""Who is calling: the `Authorization: Token …` header resolved to a registered party."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from chargegate.gateway import gateway_of
from chargegate.service.parties import Caller

from .envelope import TooManyRequests, Unauthorized
from .tokens import candidates_from_header


async def _caller(request: Request) -> Caller:
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized("missing Authorization header; send 'Authorization: Token <token>'")
    candidates = candidates_from_header(header)
    if not candidates:
        raise Unauthorized("Authorization header must be 'Token <token>'")
    gateway = gateway_of(request)
    caller = await gateway.parties.by_token(candidates)
    if caller is None:
        raise Unauthorized("unknown token")
    wait = gateway.rates.parties.take(caller.party.id)
    if wait:
        raise TooManyRequests(*gateway.rates.refusal(wait))
    return caller


async def any_token(request: Request) -> Caller:
    """Versions and credentials accept token A (before the handshake) or C."""
    return await _caller(request)


async def registered(request: Request) -> Caller:
    """Functional modules need a completed handshake (2.2.1: token A there is a 401)."""
    caller = await _caller(request)
    if caller.with_token_a or caller.party.state != "REGISTERED":
        raise Unauthorized("this token may only be used for versions and credentials")
    return caller


AnyCaller = Annotated[Caller, Depends(any_token)]
RegisteredCaller = Annotated[Caller, Depends(registered)]
