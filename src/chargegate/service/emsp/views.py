"""An eMSP command as the API, the SSE stream and webhooks show it, and who may see it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chargegate.domain import emsp_commands as ec
from chargegate.domain.clock import as_utc, ocpi_datetime
from chargegate.domain.emsp_commands import EmspCommandState

from .peers import peer_name
from .records import SentCommand
from .store_ports import CommandReads


@dataclass(frozen=True, slots=True)
class Requester:
    """The API key a request came with."""

    key_id: int | None
    scopes: frozenset[str]


def visible(requester: Requester, c: SentCommand) -> bool:
    return ec.sees_all(requester.scopes) or c.api_key_id == requester.key_id


async def command_view(reads: CommandReads, c: SentCommand) -> dict[str, Any]:
    """The command with its peer, its latest Session and its latest CDR."""
    peer = await reads.peer(c.peer_id)
    session = await reads.latest_session_of(c.id)
    cdr = await reads.latest_cdr_of(c.id)
    state = EmspCommandState(c.state)
    sent = {k: v for k, v in (c.body or {}).items() if k != "response_url"}
    out: dict[str, Any] = {
        "id": c.id,
        "peer": peer_name(peer) if peer else None,
        "command": c.type,
        "ocpi_version": c.ocpi_version,
        "state": state.value,
        "final": ec.is_final(state, c.response_result, c.response_status_code),
        "authorization_reference": c.authorization_reference,
        "request": c.params,
        "sent": sent,
        "response": None,
        "expires_at": _time(c.expires_at),
        "result": None,
        "failure": c.failure,
        "session": None,
        "cdr": None,
        "created_at": _time(c.created_at),
        "updated_at": _time(c.updated_at),
    }
    if c.responded_at is not None:
        out["response"] = {
            "status_code": c.response_status_code,
            "result": c.response_result,
            "timeout": c.response_timeout,
            "message": c.response_message,
            "at": _time(c.responded_at),
        }
    if c.result is not None:
        out["result"] = {
            "result": c.result,
            "message": c.result_message,
            "at": _time(c.result_at),
            # Taken after the command was final (EXPIRED, FAILED, a RESPONDED refusal).
            "late": state is not EmspCommandState.RESULT,
        }
    if session is not None:
        obj = session.object or {}
        out["session"] = {
            "id": session.session_id,
            "country_code": session.country_code,
            "party_id": session.party_id,
            "status": session.status,
            "kwh": obj.get("kwh"),
            "last_updated": obj.get("last_updated"),
        }
    if cdr is not None:
        obj = cdr.object or {}
        out["cdr"] = {
            "id": cdr.cdr_id,
            "total_energy": obj.get("total_energy"),
            "total_cost": obj.get("total_cost"),
        }
    return out


def as_of(kind: ec.EventKind, view: dict[str, Any]) -> dict[str, Any]:
    """The view as it stood at this event. Only a RESPONDED told together with the result that
    beat it differs from the current view: it shows the command before its result."""
    if kind is not ec.EventKind.RESPONDED or view["state"] == EmspCommandState.RESPONDED.value:
        return view
    response = view["response"] or {}
    return {
        **view,
        "state": EmspCommandState.RESPONDED.value,
        "final": ec.is_final(
            EmspCommandState.RESPONDED, response.get("result"), response.get("status_code")
        ),
        "result": None,
    }


def _time(value: Any) -> str | None:
    return ocpi_datetime(as_utc(value)) if value is not None else None
