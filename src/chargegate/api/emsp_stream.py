"""Following eMSP commands: a server-sent events stream of their changes, and a webhook per API
key that gets the same events POSTed.

Each event is `id: <event id>`, `event: <REQUESTED|RESPONDED|RESULT|EXPIRED|FAILED|LATE_RESULT|
SESSION|CDR>`, `data: {"id", "event", "at", "command": <the command as GET shows it>}`. A client
that reconnects with `Last-Event-ID` continues where it stopped."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from chargegate.domain import emsp_commands as ec
from chargegate.domain.outbound_policy import OutboundRefused
from chargegate.gateway import gateway_of
from chargegate.service.emsp.events import EmspEvents, Signal, event_payload
from chargegate.store.listing import MAX_KEY

from .auth import AnyKey
from .emsp import requester

router = APIRouter(prefix="/emsp", tags=["eMSP commands"])

_KEEP_ALIVE = 15.0


def _sse(
    request: Request,
    *,
    cursor: int,
    api_key_id: int | None,
    command_id: str | None = None,
    until_final: bool = False,
) -> StreamingResponse:
    events: EmspEvents = gateway_of(request).emsp.events
    poll = gateway_of(request).settings.delivery_poll_interval

    async def stream() -> AsyncIterator[str]:
        position = cursor
        yield "retry: 2000\n\n"
        beat = time.monotonic()
        while True:
            wake = events.signal.current()
            batch = await events.after(position, api_key_id=api_key_id, command_id=command_id)
            for event in batch:
                position = event.id
                data = json.dumps(event_payload(event))
                yield f"id: {event.id}\nevent: {event.kind}\ndata: {data}\n\n"
                if until_final and event.data.get("final"):
                    return
            if batch:
                beat = time.monotonic()
                continue
            if time.monotonic() - beat >= _KEEP_ALIVE:
                beat = time.monotonic()
                yield ": keep-alive\n\n"
            await Signal.wait(wake, poll)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _event_id(header: str | None) -> int | None:
    """The event id a reconnecting client sends, if it can be one of ours (ASCII digits, a 64-bit
    key); anything else is ignored as if absent."""
    if header and header.isascii() and header.isdigit() and len(header) <= 19:
        value = int(header)
        return value if value <= MAX_KEY else None
    return None


@router.get(
    "/events",
    summary="Server-sent events: every change of the commands this key may see",
    description=(
        "Starts with changes from now on; `after=0` replays from the beginning; a reconnecting "
        "EventSource sends `Last-Event-ID` and misses nothing."
    ),
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_events(
    request: Request,
    key: AnyKey,
    after: Annotated[int | None, Query(ge=0, le=MAX_KEY)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    who = requester(key)
    resumed = _event_id(last_event_id)
    if resumed is not None:
        cursor = resumed
    elif after is not None:
        cursor = after
    else:
        cursor = await gateway_of(request).emsp.events.last_id()
    owner = None if ec.sees_all(who.scopes) else key.id
    return _sse(request, cursor=cursor, api_key_id=owner)


@router.get(
    "/commands/{command_id}/events",
    summary="Server-sent events of one command, from its start; ends once it is final",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_command(
    command_id: str,
    request: Request,
    key: AnyKey,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    # 404 for a command this key may not see, before the stream starts.
    await gateway_of(request).emsp.commands.get(requester(key), command_id)
    cursor = _event_id(last_event_id) or 0
    return _sse(request, cursor=cursor, api_key_id=None, command_id=command_id, until_final=True)


class WebhookIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"url": "https://backend.example.com/chargegate"}]},
    )
    url: str = Field(max_length=512, pattern=r"^[^\x00-\x1f\x7f]+$")  # no control characters


@router.put(
    "/webhook",
    summary="POST this key's command changes to a URL (one at a time, in order, retried)",
    description=(
        "Answers the secret once: each POST carries `X-Chargegate-Signature: sha256=<HMAC-SHA256 "
        "of the body>` and `X-Chargegate-Event-Id`. Any 2xx acknowledges an event."
    ),
)
async def put_webhook(body: WebhookIn, request: Request, key: AnyKey) -> dict[str, Any]:
    gateway = gateway_of(request)
    try:
        # Checked now for a clear answer, and again on every POST (the name may move).
        await gateway.egress.check_url(body.url)
    except OutboundRefused as exc:
        raise ec.EmspRequestError("invalid", f"url: {exc}") from exc
    result: dict[str, Any] = await gateway.emsp.subscriptions.put(key, body.url)
    return result


@router.get("/webhook", summary="This key's webhook and its delivery state")
async def get_webhook(request: Request, key: AnyKey) -> dict[str, Any]:
    found = await gateway_of(request).emsp.subscriptions.get(key)
    if found is None:
        raise ec.EmspRequestError("not_found", "this key has no webhook; PUT one")
    result: dict[str, Any] = found
    return result


@router.post(
    "/webhook/retry",
    summary="Resume a dead webhook (past its horizon) from the event it stopped at",
    status_code=204,
)
async def retry_webhook(request: Request, key: AnyKey) -> None:
    if not await gateway_of(request).emsp.subscriptions.resume(key):
        raise ec.EmspRequestError("not_found", "this key has no dead webhook")


@router.delete("/webhook", summary="Stop POSTing this key's command changes", status_code=204)
async def delete_webhook(request: Request, key: AnyKey) -> None:
    if not await gateway_of(request).emsp.subscriptions.delete(key):
        raise ec.EmspRequestError("not_found", "this key has no webhook")
