"""How a remote request record is shown to operators (JSON and links to the OCPP exchange)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from chargegate.domain.clock import ocpi_datetime
from chargegate.service.remote_requests import RemoteRequestRow


def log_link(record: RemoteRequestRow) -> str:
    """The communication log page filtered to the OCPP messages this request caused."""
    ids = ",".join(record.ocpp_message_ids or [])
    return (
        f"/communication_log/ui?message_id={quote(ids)}"
        if ids
        else (f"/communication_log/ui?station={quote(record.station_id)}")
    )


def record_json(record: RemoteRequestRow) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": record.id,
        "kind": record.kind,
        "cpId": record.station_id,
        "connectorId": record.connector_id,
        "status": record.status,
        "request": record.request,
        "response": record.response,
        "message": record.message,
        "createdAt": ocpi_datetime(record.created_at),
        "finishedAt": ocpi_datetime(record.finished_at) if record.finished_at else None,
        "ocppMessageIds": record.ocpp_message_ids or [],
        "communicationLog": log_link(record),
    }
    if record.kind == "remote_start_attempt":
        out["idTag"] = record.id_tag
        out["validUntil"] = ocpi_datetime(record.valid_until) if record.valid_until else None
        out["stopMinutes"] = record.stop_minutes
        out["sessionId"] = record.session_id
        out["stopAt"] = ocpi_datetime(record.stop_at) if record.stop_at else None
        out["stopRequestId"] = record.stop_request_id
    if record.kind == "remote_stop":
        out["sessionId"] = record.session_id
    return out
