"""Dead letters: deliveries a peer refused for good or that outlived their horizon
(docs/guarantees.md#dead-letters). Listing needs the read scope; sending one again or dropping
it, the operator scope."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request

from chargegate.domain.clock import ocpi_datetime, utcnow
from chargegate.gateway import gateway_of
from chargegate.store.delivery_sql import DeadLetter, DeadLetters
from chargegate.store.listing import MAX_KEY, MAX_OFFSET

from .auth import OperatorScope, ReadScope

router = APIRouter(prefix="/deliveries/dead", tags=["Operator deliveries"])


# An outbox row id: a 64-bit key (a larger number is a client error, not a database one).
LetterId = Annotated[int, Path(ge=1, le=MAX_KEY)]


def dead_letter_json(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.id,
        "kind": letter.kind,
        "peer": letter.peer,
        "url": letter.url,
        "commandId": letter.command_id,
        "correlationId": letter.correlation_id,
        "attempts": letter.attempts,
        "refusals": letter.refusals,
        "lastError": letter.last_error,
        "createdAt": ocpi_datetime(letter.created_at),
        "deadSince": ocpi_datetime(letter.gave_up_at),
    }


def _letters(request: Request) -> DeadLetters:
    gateway = gateway_of(request)
    return DeadLetters(gateway.sessions, gateway.settings.delivery_result_horizon)


@router.get("", summary="Deliveries set aside: refused for good, or past their horizon")
async def list_dead_letters(
    request: Request,
    key: ReadScope,
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(100, ge=1, description="at most 500 are returned"),
) -> list[dict[str, Any]]:
    letters = await _letters(request).list(min(limit, 500), offset)
    return [dead_letter_json(letter) for letter in letters]


@router.post("/{id}/retry", status_code=204, summary="Send a dead letter again, from scratch")
async def retry_dead_letter(id: LetterId, request: Request, key: OperatorScope) -> None:
    if not await _letters(request).retry(id, utcnow()):
        raise HTTPException(404, f"no dead letter {id}")


@router.delete("/{id}", status_code=204, summary="Drop a dead letter (kept, marked dropped)")
async def drop_dead_letter(id: LetterId, request: Request, key: OperatorScope) -> None:
    if not await _letters(request).drop(id, utcnow()):
        raise HTTPException(404, f"no dead letter {id}")
