"""Operator remote-commands REST API (docs/decisions.md#operator-api; `cpId` is the station id)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from chargegate.domain.clock import ocpi_datetime
from chargegate.gateway import gateway_of
from chargegate.service.remote_commands import (
    ConfigurationItem,
    RemoteCommandError,
    RemoteCommandService,
)

from .auth import OperatorScope, ReadScope
from .records import record_json

router = APIRouter(prefix="/remote_commands", tags=["Operator remote commands"])

_FAILURES: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown station, connector or request"},
    409: {"description": "station offline, or station/connector locked"},
    429: {"description": "the parallel-request cap is reached; see Retry-After"},
    502: {"description": "the station answered with a CALLERROR or dropped the connection"},
    504: {"description": "the station did not answer within the operator timeout"},
}


# What the store keeps or looks up: no control characters (PostgreSQL refuses NUL), within the
# column's length, and connector ids within its 32-bit integer.
_TEXT = r"^[^\x00-\x1f\x7f]+$"
_INT32 = 2**31 - 1


def _service(request: Request) -> RemoteCommandService:
    service: RemoteCommandService = gateway_of(request).remote_commands
    return service


class GetConfigurationBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"keys": ["HeartbeatInterval"]}]})
    keys: list[str] = Field(default_factory=list, description="none means all keys")


class ConfigurationEntry(BaseModel):
    key: str = Field(max_length=50)
    value: str = Field(max_length=500)


class ChangeConfigurationsBody(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"configurations": [{"key": "HeartbeatInterval", "value": "120"}]}]
        }
    )
    configurations: list[ConfigurationEntry] = Field(min_length=1)


class ResetBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"type": "Soft"}]})
    type: Literal["Hard", "Soft"]


class RemoteStartAttemptBody(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"cpId": "CP-001", "connectorId": 1, "idTag": "04A1B2C3", "stopMinutes": 60}
            ]
        }
    )
    cpId: str = Field(min_length=1, max_length=48, pattern=_TEXT)
    connectorId: int | None = Field(None, ge=1, le=_INT32)
    connectorUuid: str | None = Field(None, max_length=36, pattern=_TEXT)
    idTag: str = Field(
        min_length=1, max_length=20, pattern=_TEXT, description="OCPP 1.6 idTag (≤ 20)"
    )
    validUntil: datetime | None = Field(None, description="default: now + 10 minutes")
    stopMinutes: float | None = Field(
        None, gt=0, description="minutes after the start at which the system stops the session"
    )

    @model_validator(mode="after")
    def _one_connector(self) -> RemoteStartAttemptBody:
        if (self.connectorId is None) == (self.connectorUuid is None):
            raise ValueError("give exactly one of connectorId and connectorUuid")
        return self


class RemoteStopBody(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"sessionId": "4f1c0e5a9b2d4e6f8a7b6c5d"}]}
    )
    sessionId: str | None = Field(None, max_length=36, pattern=_TEXT)
    cpId: str | None = Field(None, max_length=48, pattern=_TEXT)
    transactionId: str | None = Field(None, max_length=36, pattern=_TEXT)

    @model_validator(mode="after")
    def _one_target(self) -> RemoteStopBody:
        if self.sessionId is None and (self.cpId is None or self.transactionId is None):
            raise ValueError("give sessionId, or cpId with transactionId")
        return self


# ---- synchronous ---------------------------------------------------------------------------


@router.post(
    "/synchronous/{cpId}/get_configuration",
    summary="GetConfiguration: the station's keys, with value and read-only flag",
    responses=_FAILURES,
)
async def get_configuration(
    cpId: str, body: GetConfigurationBody, request: Request, key: OperatorScope
) -> dict[str, Any]:
    record = await _service(request).get_configuration(cpId, body.keys, key.id)
    response = record.response or {}
    return {
        **record_json(record),
        "configurationKeys": response.get("configurationKey", []),
        "unknownKeys": response.get("unknownKey", []),
    }


@router.get(
    "/synchronous/{cpId}/get_configuration",
    summary="The configuration stored from the station's last answer (also while offline)",
    responses={404: _FAILURES[404]},
)
async def stored_configuration(cpId: str, request: Request, key: ReadScope) -> dict[str, Any]:
    rows = await _service(request).stored_configuration(cpId)
    return {
        "cpId": cpId,
        "configurationKeys": [
            {
                "key": r.key,
                "value": r.value,
                "readonly": r.readonly,
                "fetchedAt": ocpi_datetime(r.fetched_at),
            }
            for r in rows
        ],
    }


@router.post(
    "/synchronous/{cpId}/change_configurations",
    summary="ChangeConfiguration, one per key; each key's status comes back",
    responses=_FAILURES,
)
async def change_configurations(
    cpId: str, body: ChangeConfigurationsBody, request: Request, key: OperatorScope
) -> dict[str, Any]:
    items = [ConfigurationItem(c.key, c.value) for c in body.configurations]
    record = await _service(request).change_configurations(cpId, items, key.id)
    return {**record_json(record), "results": (record.response or {}).get("results", [])}


@router.post("/synchronous/{cpId}/reset", summary="Reset Hard or Soft", responses=_FAILURES)
async def reset(cpId: str, body: ResetBody, request: Request, key: OperatorScope) -> dict[str, Any]:
    record = await _service(request).reset(cpId, body.type, key.id)
    return {**record_json(record), "stationStatus": (record.response or {}).get("status")}


@router.post(
    "/synchronous/{cpId}/unlock_connector/{cpConnectorUuid}",
    summary="UnlockConnector on the connector with this stable UUID",
    responses=_FAILURES,
)
async def unlock_connector(
    cpId: str, cpConnectorUuid: str, request: Request, key: OperatorScope
) -> dict[str, Any]:
    record = await _service(request).unlock_connector(cpId, cpConnectorUuid, key.id)
    return {**record_json(record), "stationStatus": (record.response or {}).get("status")}


# ---- asynchronous --------------------------------------------------------------------------


@router.post(
    "/asynchronous/remote_start_attempt",
    status_code=202,
    summary="Start a transaction; succeeds when it starts before validUntil",
    responses=_FAILURES,
)
async def remote_start_attempt(
    body: RemoteStartAttemptBody, request: Request, key: OperatorScope
) -> dict[str, Any]:
    record = await _service(request).remote_start_attempt(
        station_id=body.cpId,
        connector_id=body.connectorId,
        connector_uuid=body.connectorUuid,
        id_tag=body.idTag,
        valid_until=body.validUntil,
        stop_minutes=body.stopMinutes,
        key_id=key.id,
    )
    return record_json(record)


@router.get(
    "/asynchronous/remote_start_attempt/{attemptId}",
    summary="State of a remote start attempt",
    responses={404: _FAILURES[404]},
)
async def get_remote_start_attempt(
    attemptId: str, request: Request, key: ReadScope
) -> dict[str, Any]:
    return record_json(await _service(request).get(attemptId, "remote_start_attempt"))


@router.post(
    "/asynchronous/remote_stop",
    status_code=202,
    summary="Stop a session (by sessionId, or cpId + transactionId)",
    responses=_FAILURES,
)
async def remote_stop(body: RemoteStopBody, request: Request, key: OperatorScope) -> dict[str, Any]:
    record = await _service(request).remote_stop(
        session_id=body.sessionId,
        station_id=body.cpId,
        transaction_id=body.transactionId,
        key_id=key.id,
    )
    return record_json(record)


@router.get(
    "/asynchronous/remote_stop/{requestId}",
    summary="State of a remote stop",
    responses={404: _FAILURES[404]},
)
async def get_remote_stop(requestId: str, request: Request, key: ReadScope) -> dict[str, Any]:
    return record_json(await _service(request).get(requestId, "remote_stop"))


@router.post(
    "/asynchronous/{cpId}/clear_cache",
    status_code=202,
    summary="ClearCache; poll its status with the referenceId",
    responses=_FAILURES,
)
async def clear_cache(cpId: str, request: Request, key: OperatorScope) -> dict[str, Any]:
    record = await _service(request).clear_cache(cpId, key.id)
    return {"referenceId": record.id, **record_json(record)}


@router.get(
    "/asynchronous/{cpId}/clear_cache/status/{referenceId}",
    summary="Status of a ClearCache",
    responses={404: _FAILURES[404]},
)
async def clear_cache_status(
    cpId: str, referenceId: str, request: Request, key: ReadScope
) -> dict[str, Any]:
    record = await _service(request).get(referenceId, "clear_cache")
    if record.station_id != cpId:
        raise RemoteCommandError("not_found", f"no clear_cache {referenceId} for {cpId}")
    return {"referenceId": record.id, **record_json(record)}


@router.get(
    "/requests/{requestId}",
    summary="Any remote request record, with links to its OCPP messages",
    responses={404: _FAILURES[404]},
)
async def get_request(requestId: str, request: Request, key: ReadScope) -> dict[str, Any]:
    return record_json(await _service(request).get(requestId))
