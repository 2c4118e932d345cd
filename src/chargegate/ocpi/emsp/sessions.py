"""Sessions module, eMSP (Receiver) interface: `{sessions}/{country_code}/{party_id}/{session_id}`
with PUT (whole object), PATCH (changed fields) and GET (what we hold)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import Response

from chargegate.gateway import gateway_of
from chargegate.service.emsp.receipts import InvalidObject

from .. import status
from ..envelope import OcpiError, ocpi_response, read_json
from ..fields import PRINTABLE
from .auth import ConnectedPeer
from .identity import response_routing_headers
from .versions import check_version

router = APIRouter(prefix="/ocpi/emsp", tags=["OCPI sessions (eMSP)"])

_PATH = "/{version}/sessions/{country_code}/{party_id}/{session_id}"


@dataclass(frozen=True)
class SessionPath:
    """The path parameters of every Sessions endpoint: the OCPI version and the CPO's ids of
    the Session."""

    version: str
    country_code: str
    party_id: str
    session_id: str

    @property
    def party(self) -> tuple[str, str]:
        return (self.country_code, self.party_id)


# As long as the spec and our columns allow, and printable (PostgreSQL refuses NUL).
def _session_path(
    version: str,
    country_code: Annotated[str, Path(min_length=2, max_length=2, pattern=PRINTABLE)],
    party_id: Annotated[str, Path(min_length=3, max_length=3, pattern=PRINTABLE)],
    session_id: Annotated[str, Path(min_length=1, max_length=36, pattern=PRINTABLE)],
) -> SessionPath:
    return SessionPath(version, country_code, party_id, session_id)


AtSession = Annotated[SessionPath, Depends(_session_path)]


async def _store(
    request: Request, peer: ConnectedPeer, at: SessionPath, *, partial: bool
) -> Response:
    check_version(at.version)
    gateway = gateway_of(request)
    headers = response_routing_headers(
        gateway.settings, at.version, (peer.country_code, peer.party_id)
    )
    body = await read_json(request)
    try:
        await gateway.emsp.receipts.put_session(
            peer, at.version, at.party, at.session_id, body, partial=partial
        )
    except InvalidObject as exc:
        raise OcpiError(status.INVALID_PARAMETERS, str(exc), headers=headers) from exc
    except LookupError:
        raise OcpiError(
            status.CLIENT_ERROR,
            f"unknown session {at.session_id!r}; PUT the whole Session first",
            http_status=404,
            headers=headers,
        ) from None
    return ocpi_response(headers=headers)


@router.put(_PATH, summary="Receive a Session (whole object)")
async def put_session(at: AtSession, request: Request, peer: ConnectedPeer) -> Response:
    return await _store(request, peer, at, partial=False)


@router.patch(_PATH, summary="Receive changed fields of a Session")
async def patch_session(at: AtSession, request: Request, peer: ConnectedPeer) -> Response:
    return await _store(request, peer, at, partial=True)


@router.get(_PATH, summary="The Session as we hold it")
async def get_session(at: AtSession, request: Request, peer: ConnectedPeer) -> Response:
    check_version(at.version)
    gateway = gateway_of(request)
    headers = response_routing_headers(
        gateway.settings, at.version, (peer.country_code, peer.party_id)
    )
    found = await gateway.emsp.receipts.get_session(peer, at.party, at.session_id)
    if found is None:
        raise OcpiError(
            status.CLIENT_ERROR, f"unknown session {at.session_id!r}", 404, headers=headers
        )
    return ocpi_response(found, headers=headers)
