"""Station requests and replies as JSON, for the hop between nodes."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from chargegate.domain import station_calls as sc
from chargegate.domain.clock import parse_datetime

_REQUEST_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        sc.RemoteStart,
        sc.RemoteStop,
        sc.Reserve,
        sc.CancelReservation,
        sc.Unlock,
        sc.GetConfiguration,
        sc.ChangeConfiguration,
        sc.Reset,
        sc.ClearCache,
    )
}


def request_to_json(request: sc.StationRequest) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for field in dataclasses.fields(request):
        value = getattr(request, field.name)
        if isinstance(value, datetime):
            value = {"datetime": value.isoformat()}
        elif isinstance(value, tuple):
            value = list(value)
        fields[field.name] = value
    return {"type": type(request).__name__, "fields": fields}


def request_from_json(data: dict[str, Any]) -> sc.StationRequest:
    cls = _REQUEST_TYPES[data["type"]]
    fields: dict[str, Any] = {}
    for name, value in data["fields"].items():
        if isinstance(value, dict) and "datetime" in value:
            value = parse_datetime(value["datetime"])
        elif isinstance(value, list):
            value = tuple(value)
        fields[name] = value
    request: sc.StationRequest = cls(**fields)
    return request


def reply_to_json(reply: sc.StationReply) -> dict[str, Any]:
    return {
        "outcome": reply.outcome.value,
        "status": reply.status,
        "error_code": reply.error_code,
        "description": reply.description,
        "data": reply.data,
        "unique_id": reply.unique_id,
    }


def reply_from_json(data: dict[str, Any]) -> sc.StationReply:
    return sc.StationReply(
        outcome=sc.Outcome(data["outcome"]),
        status=data.get("status"),
        error_code=data.get("error_code"),
        description=data.get("description") or "",
        data=data.get("data") or {},
        unique_id=data.get("unique_id"),
    )
