"""Who is calling our eMSP role: the token B we issued to a CPO, resolved to that peer."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from chargegate.gateway import gateway_of
from chargegate.service.emsp.records import Peer as EmspPeer

from ..envelope import TooManyRequests, Unauthorized
from ..tokens import candidates_from_header


async def _peer(request: Request) -> EmspPeer:
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized("missing Authorization header; send 'Authorization: Token <token>'")
    candidates = candidates_from_header(header)
    if not candidates:
        raise Unauthorized("Authorization header must be 'Token <token>'")
    gateway = gateway_of(request)
    peer: EmspPeer | None = await gateway.emsp.peers.by_token(candidates)
    if peer is None:
        raise Unauthorized("unknown token")
    wait = gateway.rates.peers.take(peer.id)
    if wait:
        raise TooManyRequests(*gateway.rates.refusal(wait))
    return peer


async def any_peer(request: Request) -> EmspPeer:
    """Versions and credentials: also while the handshake we started is under way."""
    return await _peer(request)


async def connected_peer(request: Request) -> EmspPeer:
    peer = await _peer(request)
    if peer.state != "CONNECTED":
        raise Unauthorized("the credentials handshake with this token is not complete")
    return peer


AnyPeer = Annotated[EmspPeer, Depends(any_peer)]
ConnectedPeer = Annotated[EmspPeer, Depends(connected_peer)]
