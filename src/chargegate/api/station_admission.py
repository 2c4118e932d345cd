"""Which stations the gateway admits (docs/security.md#station-admission): register, disable,
remove, and set their HTTP Basic password, directly or through the station. `cpId` is the
station id, as in the other operator endpoints."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from chargegate.domain.clock import ocpi_datetime
from chargegate.domain.station_credentials import InvalidPassword, InvalidStationId
from chargegate.gateway import gateway_of
from chargegate.service.station_admission import (
    AdmissionRow,
    PasswordNotTaken,
    StationAdmission,
    StationAlreadyRegistered,
    UnknownStation,
)

from .auth import OperatorScope, ReadScope

router = APIRouter(prefix="/stations", tags=["Operator station admission"])

_PASSWORD = Field(
    None,
    min_length=16,
    max_length=40,
    description="16-40 characters of A-Z a-z 0-9 * - _ = : + | @ . (absent: one is generated)",
)


class RegisterBody(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"cpId": "CP-001"}, {"cpId": "CP-002", "noPassword": True}]}
    )
    cpId: str = Field(max_length=48)
    password: str | None = _PASSWORD
    noPassword: bool = Field(
        False, description="admit by id alone (weak: anyone knowing the id is the station)"
    )


class AdmissionBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"disabled": True}]})
    disabled: bool


class PasswordBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{}, {"viaStation": True}]})
    password: str | None = _PASSWORD
    viaStation: bool = Field(
        False,
        description=(
            "send it to the connected station first (1.6 ChangeConfiguration AuthorizationKey,"
            " 2.0.1 SetVariables SecurityCtrlr.BasicAuthPassword); stored only if it accepts"
        ),
    )


def _admission(request: Request) -> StationAdmission:
    admission: StationAdmission = gateway_of(request).admission
    return admission


async def _json(request: Request, row: AdmissionRow, **extra: Any) -> dict[str, Any]:
    return {
        "cpId": row.station_id,
        "registered": row.registered,
        "disabled": row.disabled,
        "hasPassword": row.has_password,
        "online": await gateway_of(request).router.is_connected(row.station_id),
        "ocppVersion": row.ocpp_version,
        "lastSeen": ocpi_datetime(row.last_seen) if row.last_seen else None,
        **extra,
    }


def _http_error(exc: Exception) -> HTTPException:
    if isinstance(exc, UnknownStation):
        return HTTPException(404, str(exc))
    if isinstance(exc, StationAlreadyRegistered):
        return HTTPException(409, str(exc))
    if isinstance(exc, PasswordNotTaken):
        return HTTPException(409, str(exc))
    return HTTPException(400, str(exc))


_ERRORS = (UnknownStation, StationAlreadyRegistered, PasswordNotTaken, InvalidStationId)
_ERRORS_AND_PASSWORD = (*_ERRORS, InvalidPassword)


@router.post(
    "",
    status_code=201,
    summary="Register a station; a generated password is in the answer, once",
    responses={409: {"description": "already registered"}, 400: {"description": "invalid"}},
)
async def register_station(
    body: RegisterBody, request: Request, key: OperatorScope
) -> dict[str, Any]:
    try:
        row, generated = await _admission(request).add(
            body.cpId, body.password, generate=not body.noPassword
        )
    except _ERRORS_AND_PASSWORD as exc:
        raise _http_error(exc) from exc
    return await _json(request, row, **({"password": generated} if generated else {}))


@router.get("/{cpId}/admission", summary="A station's admission")
async def get_admission(cpId: str, request: Request, key: ReadScope) -> dict[str, Any]:
    try:
        row = await _admission(request).show(cpId)
    except UnknownStation as exc:
        raise _http_error(exc) from exc
    return await _json(request, row)


@router.patch(
    "/{cpId}/admission", summary="Disable a station (its connection is dropped) or enable it"
)
async def patch_admission(
    cpId: str, body: AdmissionBody, request: Request, key: OperatorScope
) -> dict[str, Any]:
    try:
        row = await _admission(request).set_disabled(cpId, body.disabled)
    except UnknownStation as exc:
        raise _http_error(exc) from exc
    return await _json(request, row)


@router.put(
    "/{cpId}/password",
    summary="Set a station's HTTP Basic password (a generated one is in the answer, once)",
    responses={409: {"description": "viaStation: offline or the station refused"}},
)
async def put_password(
    cpId: str, body: PasswordBody, request: Request, key: OperatorScope
) -> dict[str, Any]:
    admission = _admission(request)
    try:
        if body.viaStation:
            row, generated, status = await admission.set_password_via_station(cpId, body.password)
            extra: dict[str, Any] = {"stationStatus": status}
        else:
            row, generated = await admission.set_password(cpId, body.password)
            extra = {}
    except _ERRORS_AND_PASSWORD as exc:
        raise _http_error(exc) from exc
    if generated:
        extra["password"] = generated
    return await _json(request, row, **extra)


@router.delete(
    "/{cpId}/password", summary="Remove the password: the station is admitted by id alone (weak)"
)
async def delete_password(cpId: str, request: Request, key: OperatorScope) -> dict[str, Any]:
    try:
        row, _ = await _admission(request).set_password(cpId, None, generate=False)
    except UnknownStation as exc:
        raise _http_error(exc) from exc
    return await _json(request, row)


@router.delete(
    "/{cpId}",
    status_code=204,
    summary="Unregister a station (its connection is dropped; its history stays)",
)
async def remove_station(cpId: str, request: Request, key: OperatorScope) -> Response:
    try:
        await _admission(request).remove(cpId)
    except UnknownStation as exc:
        raise _http_error(exc) from exc
    return Response(status_code=204)
