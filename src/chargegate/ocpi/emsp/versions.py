"""GET versions and version details of our eMSP role (version_information_endpoint).

2.2.1 lists `commands` as SENDER (we send commands; results come back to the response_urls we
give) and `sessions`/`cdrs` as RECEIVER; 2.1.1 has no roles."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from chargegate.gateway import gateway_of
from chargegate.service.emsp.identity import emsp_base
from chargegate.settings import Settings

from .. import status
from ..envelope import OcpiError, ocpi_response
from .auth import AnyPeer

VERSIONS = ("2.2.1", "2.1.1")  # preferred first

# (module identifier, 2.2.1 role)
_MODULES = (
    ("credentials", "SENDER"),
    ("commands", "SENDER"),
    ("sessions", "RECEIVER"),
    ("cdrs", "RECEIVER"),
)

router = APIRouter(prefix="/ocpi/emsp", tags=["OCPI versions (eMSP)"])


def versions_url(settings: Settings) -> str:
    return f"{emsp_base(settings)}/versions"


def module_url(settings: Settings, version: str, module: str) -> str:
    return f"{emsp_base(settings)}/{version}/{module}"


def endpoints(settings: Settings, version: str) -> list[dict[str, Any]]:
    out = []
    for identifier, role in _MODULES:
        entry: dict[str, Any] = {
            "identifier": identifier,
            "url": module_url(settings, version, identifier),
        }
        if version == "2.2.1":
            entry["role"] = role
        out.append(entry)
    return out


def check_version(version: str) -> None:
    if version not in VERSIONS:
        raise OcpiError(
            status.UNSUPPORTED_VERSION,
            f"unsupported version {version!r}; use one of {VERSIONS}",
            404,
        )


@router.get("/versions", summary="OCPI versions our eMSP role speaks")
async def get_versions(request: Request, peer: AnyPeer) -> Response:
    settings: Settings = gateway_of(request).settings
    return ocpi_response([{"version": v, "url": f"{emsp_base(settings)}/{v}"} for v in VERSIONS])


@router.get("/{version}", summary="Endpoints of our eMSP role in one OCPI version")
async def get_version_details(version: str, request: Request, peer: AnyPeer) -> Response:
    check_version(version)
    settings: Settings = gateway_of(request).settings
    return ocpi_response({"version": version, "endpoints": endpoints(settings, version)})
