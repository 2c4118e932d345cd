"""Webhooks: an API key may name one URL that gets every change of its commands, POSTed one
event at a time in order, retried with backoff until it answers 2xx or, after failing on one
event for `webhook_horizon` seconds, set aside as a dead letter until its owner resumes it
(docs/guarantees.md#webhooks).

A webhook's `cursor` is the last event it acknowledged, so nothing is kept per delivery and a
restart loses nothing. A lease (a conditional UPDATE in store/emsp_webhooks_sql.py) keeps two
workers, in one process or on several nodes, from sending the same webhook's events at once.
Each POST carries `X-Chargegate-Signature: sha256=<HMAC of the body with the webhook's
secret>`."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from datetime import timedelta

import httpx

from chargegate import redaction
from chargegate.delivery.backoff import retry_delay
from chargegate.domain import emsp_commands as ec
from chargegate.domain.clock import utcnow
from chargegate.service.emsp.events import EmspEvents, event_payload
from chargegate.service.emsp.records import CommandEvent, Webhook
from chargegate.service.emsp.store_ports import WebhookStore
from chargegate.settings import Settings

log = logging.getLogger(__name__)

_BATCH = 50


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookWorker:
    """POSTs each webhook's events in order, one webhook per lease."""

    def __init__(
        self,
        settings: Settings,
        store: WebhookStore,
        client: httpx.AsyncClient,
        events: EmspEvents,
        on_dead_letter: Callable[[Webhook], None] | None = None,
    ) -> None:
        """`on_dead_letter` is called once per webhook set aside (the metric's hook)."""
        self._on_dead_letter = on_dead_letter
        self._settings = settings
        self._store = store
        self._client = client
        self._events = events
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="emsp-webhooks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            wake = self._events.signal.current()
            try:
                await self.run_once()
            except Exception:
                log.exception("webhook round failed")
            await self._events.signal.wait(wake, self._settings.delivery_poll_interval)

    async def run_once(self) -> None:
        due = await self._store.due(utcnow())
        # Reading first keeps an idle webhook from costing a write per poll.
        pending = [hook.id for hook in due if await self._pending(hook)]
        await asyncio.gather(*(self._deliver(hook_id) for hook_id in pending))

    async def _pending(self, hook: Webhook) -> bool:
        owner = await self._owner_filter(hook.api_key_id)
        return bool(await self._events.after(hook.cursor, api_key_id=owner, limit=1))

    async def _deliver(self, hook_id: int) -> None:
        now = utcnow()
        until = now + timedelta(seconds=self._settings.delivery_lease)
        hook = await self._store.claim(hook_id, now, until)
        if hook is None:
            return
        cursor, error = hook.cursor, None
        try:
            owner = await self._owner_filter(hook.api_key_id)
            events = await self._events.after(cursor, api_key_id=owner, limit=_BATCH)
            for event in events:
                error = await self._post(hook, event)
                if error is not None:
                    break
                cursor = event.id
        finally:
            await self._record(hook, cursor, error)

    async def _owner_filter(self, key_id: int) -> int | None:
        """None (every command's events) for operator and read keys, else the key's own."""
        scopes = await self._store.key_scopes(key_id)
        return None if ec.sees_all(scopes) else key_id

    async def _post(self, hook: Webhook, event: CommandEvent) -> str | None:
        body = json.dumps(event_payload(event)).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Chargegate-Event-Id": str(event.id),
            "X-Chargegate-Signature": signature(hook.secret, body),
        }
        try:
            response = await self._client.post(
                hook.url,
                content=body,
                headers=headers,
                timeout=self._settings.delivery_http_timeout,
            )
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if not 200 <= response.status_code < 300:
            return f"HTTP {response.status_code}: {response.text[:200]}"
        return None

    async def _record(self, hook: Webhook, cursor: int, error: str | None) -> None:
        now = utcnow()
        if error is None:
            await self._store.delivered(
                hook, cursor=cursor, attempts=0, last_error=None, next_attempt_at=now
            )
            return
        attempts = hook.attempts + 1
        # The event that failed: the same as last round's, or a new one if some went through.
        since = hook.failing_since if cursor == hook.cursor and hook.failing_since else now
        dead = (now - since).total_seconds() >= self._settings.webhook_horizon
        delay = retry_delay(
            attempts, self._settings.delivery_retry_base, self._settings.delivery_retry_max
        )
        if dead:
            # A dead letter: no secret, no body; the owner resumes it (POST /emsp/webhook/retry).
            log.warning(
                "dead letter: webhook %s of API key %s at event %d, failing for %.0fs after %d"
                " attempts: %s",
                hook.id,
                hook.api_key_id,
                cursor,
                (now - since).total_seconds(),
                attempts,
                error.split(":", 1)[0],
            )
            if self._on_dead_letter is not None:
                self._on_dead_letter(hook)  # the metric's hook (issue 22)
        else:
            log.warning(
                "webhook %s: event after %d failed (attempt %d), retry in %.1fs: %s",
                redaction.url(hook.url),
                cursor,
                attempts,
                delay,
                error,
            )
        await self._store.delivered(
            hook,
            cursor=cursor,
            attempts=attempts,
            last_error=error,
            next_attempt_at=now + timedelta(seconds=delay),
            failing_since=since,
            dead_at=now if dead else None,
        )
