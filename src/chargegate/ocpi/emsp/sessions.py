"""Sessions module, eMSP (Receiver) interface: `{sessions}/{country_code}/{party_id}/{session_id}`
with PUT (whole object), PATCH (changed fields) and GET (what we hold)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from chargegate.gateway import gateway_of
from chargegate.service.emsp.receipts import InvalidObject

from .. import status
from ..envelope import OcpiError, ocpi_response, read_json
from .auth import ConnectedPeer
from .identity import response_routing_headers
from .versions import check_version

router = APIRouter(prefix="/ocpi/emsp", tags=["OCPI sessions (eMSP)"])

_PATH = "/{version}/sessions/{country_code}/{party_id}/{session_id}"


async def _store(
    request: Request,
    peer: ConnectedPeer,
    version: str,
    party: tuple[str, str],
    session_id: str,
    *,
    partial: bool,
) -> Response:
    check_version(version)
    gateway = gateway_of(request)
    headers = response_routing_headers(
        gateway.settings, version, (peer.country_code, peer.party_id)
    )
    body = await read_json(request)
    try:
        await gateway.emsp.receipts.put_session(
            peer, version, party, session_id, body, partial=partial
        )
    except InvalidObject as exc:
        raise OcpiError(status.INVALID_PARAMETERS, str(exc), headers=headers) from exc
    except LookupError:
        raise OcpiError(
            status.CLIENT_ERROR,
            f"unknown session {session_id!r}; PUT the whole Session first",
            http_status=404,
            headers=headers,
        ) from None
    return ocpi_response(headers=headers)


@router.put(_PATH, summary="Receive a Session (whole object)")
async def put_session(
    version: str,
    country_code: str,
    party_id: str,
    session_id: str,
    request: Request,
    peer: ConnectedPeer,
) -> Response:
    return await _store(request, peer, version, (country_code, party_id), session_id, partial=False)


@router.patch(_PATH, summary="Receive changed fields of a Session")
async def patch_session(
    version: str,
    country_code: str,
    party_id: str,
    session_id: str,
    request: Request,
    peer: ConnectedPeer,
) -> Response:
    return await _store(request, peer, version, (country_code, party_id), session_id, partial=True)


@router.get(_PATH, summary="The Session as we hold it")
async def get_session(
    version: str,
    country_code: str,
    party_id: str,
    session_id: str,
    request: Request,
    peer: ConnectedPeer,
) -> Response:
    check_version(version)
    gateway = gateway_of(request)
    headers = response_routing_headers(
        gateway.settings, version, (peer.country_code, peer.party_id)
    )
    found = await gateway.emsp.receipts.get_session(peer, (country_code, party_id), session_id)
    if found is None:
        raise OcpiError(
            status.CLIENT_ERROR, f"unknown session {session_id!r}", 404, headers=headers
        )
    return ocpi_response(found, headers=headers)
