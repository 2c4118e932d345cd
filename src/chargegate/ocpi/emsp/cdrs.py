"""CDRs module, eMSP (Receiver) interface: POST a CDR to `{cdrs}`, GET it back at the URL we
answer in `Location`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from chargegate.gateway import gateway_of
from chargegate.service.emsp.receipts import InvalidObject
from chargegate.store.listing import MAX_KEY

from .. import status
from ..envelope import OcpiError, ocpi_response, read_json
from .auth import ConnectedPeer
from .identity import response_routing_headers
from .versions import check_version, module_url

router = APIRouter(prefix="/ocpi/emsp", tags=["OCPI CDRs (eMSP)"])


@router.post("/{version}/cdrs", summary="Receive a CDR")
async def post_cdr(version: str, request: Request, peer: ConnectedPeer) -> Response:
    check_version(version)
    gateway = gateway_of(request)
    headers = response_routing_headers(
        gateway.settings, version, (peer.country_code, peer.party_id)
    )
    body = await read_json(request)
    try:
        pk = await gateway.emsp.receipts.post_cdr(peer, version, body)
    except InvalidObject as exc:
        raise OcpiError(status.INVALID_PARAMETERS, str(exc), headers=headers) from exc
    headers["Location"] = f"{module_url(gateway.settings, version, 'cdrs')}/{pk}"
    return ocpi_response(headers=headers)


# The key we answered in `Location`, a 64-bit row key: a larger number is a bad parameter.
CdrKey = Annotated[int, Path(ge=1, le=MAX_KEY)]


@router.get("/{version}/cdrs/{cdr_key}", summary="A CDR we received")
async def get_cdr(version: str, cdr_key: CdrKey, request: Request, peer: ConnectedPeer) -> Response:
    check_version(version)
    gateway = gateway_of(request)
    headers = response_routing_headers(
        gateway.settings, version, (peer.country_code, peer.party_id)
    )
    found = await gateway.emsp.receipts.get_cdr(peer, cdr_key)
    if found is None:
        raise OcpiError(status.CLIENT_ERROR, f"unknown CDR {cdr_key}", 404, headers=headers)
    return ocpi_response(found, headers=headers)
