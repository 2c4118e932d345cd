"""Commands module, eMSP (Sender) interface: the results the CPO POSTs to our response_urls.

Each URL we hand out ends in an unguessable reference bound to one command, one peer, one
version and one command type; any other URL under it is a 404. The body is read leniently:
the CommandResponse/CommandResult object, or the bare enum (the 2.1.1 tag's wording), as a JSON
string, raw text or inside an envelope's `data`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from chargegate import json_text
from chargegate.domain.emsp_commands import RESULT_VALUES
from chargegate.gateway import gateway_of

from .. import status
from ..envelope import OcpiError, ocpi_response
from .auth import ConnectedPeer
from .identity import response_routing_headers
from .sender import display_text
from .versions import check_version

router = APIRouter(prefix="/ocpi/emsp", tags=["OCPI commands (eMSP)"])

_KNOWN = RESULT_VALUES["2.1.1"] | RESULT_VALUES["2.2.1"]


def read_result(raw: bytes) -> tuple[str, str | None]:
    """(result, message) from the body; OcpiError 2001 (HTTP 400 for non-JSON) otherwise."""
    text = raw.decode(errors="replace").strip()
    body: Any
    try:
        body = json_text.loads_document(text)
    except ValueError:
        if text not in _KNOWN:
            raise OcpiError(
                status.INVALID_PARAMETERS, "request body is not valid JSON", http_status=400
            ) from None
        body = text
    if isinstance(body, dict) and "result" not in body and "data" in body:
        body = body["data"]
    message = None
    if isinstance(body, dict):
        message = display_text(body.get("message"))
        body = body.get("result")
    if not isinstance(body, str) or not body:
        raise OcpiError(status.INVALID_PARAMETERS, 'result: missing; send {"result": …}')
    if body not in _KNOWN:
        raise OcpiError(
            status.INVALID_PARAMETERS,
            f"result: {body!r} is not a CommandResult/CommandResponse value "
            f"({', '.join(sorted(_KNOWN))})",
        )
    return body, message


@router.post(
    "/{version}/commands/{command}/{reference}",
    summary="Receive the result of a command we sent (the response_url we gave)",
)
async def post_result(
    version: str, command: str, reference: str, request: Request, peer: ConnectedPeer
) -> Response:
    check_version(version)
    gateway = gateway_of(request)
    headers = response_routing_headers(
        gateway.settings, version, (peer.country_code, peer.party_id)
    )
    result, message = read_result(await request.body())
    try:
        note = await gateway.emsp.commands.record_result(
            peer, version, command, reference, result, message
        )
    except LookupError:
        raise OcpiError(
            status.CLIENT_ERROR,
            "no command of yours has this response_url",
            http_status=404,
            headers=headers,
        ) from None
    # GIREVE's published answer to a callback: `data: {}` (docs/decisions.md#emsp-results).
    return ocpi_response({}, message=note, headers=headers)
