"""GET versions and version details: what we speak and where (version_information_endpoint)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from chargegate.gateway import gateway_of
from chargegate.settings import Settings

from .auth import AnyCaller
from .envelope import OcpiError, ocpi_response

VERSIONS = ("2.2.1", "2.1.1")  # preferred first

# (module identifier, 2.2.1 role, path under /ocpi/cpo/{version})
_CPO_MODULES = (
    ("credentials", "SENDER", None),
    ("locations", "SENDER", "locations"),
    ("sessions", "SENDER", "sessions"),
    ("cdrs", "SENDER", "cdrs"),
    ("commands", "RECEIVER", "commands"),
)

router = APIRouter(prefix="/ocpi", tags=["OCPI versions"])


def base(settings: Settings) -> str:
    return settings.public_url.rstrip("/") + "/ocpi"


def details_url(settings: Settings, version: str) -> str:
    return f"{base(settings)}/{version}"


def endpoints(settings: Settings, version: str) -> list[dict[str, Any]]:
    out = []
    for identifier, role, path in _CPO_MODULES:
        url = (
            f"{base(settings)}/{version}/credentials"
            if path is None
            else f"{base(settings)}/cpo/{version}/{path}"
        )
        entry: dict[str, Any] = {"identifier": identifier, "url": url}
        if version == "2.2.1":
            entry["role"] = role
        out.append(entry)
    return out


@router.get("/versions", summary="OCPI versions this CPO speaks")
async def get_versions(request: Request, caller: AnyCaller) -> Response:
    settings: Settings = gateway_of(request).settings
    return ocpi_response([{"version": v, "url": details_url(settings, v)} for v in VERSIONS])


@router.get("/{version}", summary="Endpoints of one OCPI version")
async def get_version_details(version: str, request: Request, caller: AnyCaller) -> Response:
    if version not in VERSIONS:
        raise OcpiError(3002, f"unsupported version {version!r}; use one of {VERSIONS}", 404)
    settings: Settings = gateway_of(request).settings
    return ocpi_response({"version": version, "endpoints": endpoints(settings, version)})
