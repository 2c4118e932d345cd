"""Credentials module of our eMSP role: what we tell a CPO about us, and its GET/PUT/DELETE.

We start the handshake (`chargegate peer connect`), so the CPO never POSTs here: a POST is 405.
A PUT is the CPO handing us new credentials (new token C or endpoints); it gets a new token B."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from chargegate.domain.tokens import token_hash
from chargegate.gateway import gateway_of
from chargegate.service.emsp.ports import PeerApiError
from chargegate.store.models import EmspPeer

from .. import status
from ..envelope import NotRegistered, OcpiError, ocpi_response, read_json
from ..tokens import candidates_from_header
from .auth import AnyPeer, ConnectedPeer
from .registration import our_credentials, parse_credentials
from .versions import check_version

router = APIRouter(prefix="/ocpi/emsp", tags=["OCPI credentials (eMSP)"])


def _token_of(request: Request, peer: EmspPeer) -> str:
    """The caller's own token B, as it sent it (decoded when it was Base64)."""
    candidates = candidates_from_header(request.headers.get("authorization"))
    return next(c for c in candidates if token_hash(c) == peer.token_b_hash)


@router.get("/{version}/credentials", summary="Our eMSP credentials, as the caller uses them")
async def get_credentials(version: str, request: Request, peer: AnyPeer) -> Response:
    check_version(version)
    return ocpi_response(
        our_credentials(gateway_of(request).settings, version, _token_of(request, peer))
    )


@router.post("/{version}/credentials", summary="Not used: we register with the CPO, not it with us")
async def post_credentials(version: str, request: Request, peer: AnyPeer) -> Response:
    check_version(version)
    raise NotRegistered("already registered (we started the handshake); use PUT to update")


@router.put("/{version}/credentials", summary="The CPO updates its credentials; new token B")
async def put_credentials(version: str, request: Request, peer: ConnectedPeer) -> Response:
    check_version(version)
    body = await read_json(request)
    gateway = gateway_of(request)
    try:
        theirs = parse_credentials(body, version, "your credentials")
    except PeerApiError as exc:
        raise OcpiError(status.INVALID_PARAMETERS, str(exc)) from exc
    try:
        token_b = await gateway.emsp.peers.update_from_peer(peer.id, version, theirs)
    except PeerApiError as exc:
        raise OcpiError(status.UNABLE_TO_USE_CLIENT_API, f"cannot use your API: {exc}") from exc
    return ocpi_response(our_credentials(gateway.settings, version, token_b))


@router.delete("/{version}/credentials", summary="The CPO unregisters us")
async def delete_credentials(version: str, request: Request, peer: ConnectedPeer) -> Response:
    check_version(version)
    await gateway_of(request).emsp.peers.unregister(peer.id)
    return ocpi_response()
