"""An API key's webhook: the URL that gets every change of its commands (delivery/webhooks.py
POSTs them), with a new signing secret each time it is set."""

from __future__ import annotations

import secrets
from typing import Any, Protocol

from chargegate.domain.clock import ocpi_datetime, utcnow
from chargegate.domain.emsp_commands import EmspRequestError

from .events import EmspEvents
from .store_ports import WebhookStore


class ApiKey(Protocol):
    """The API key a webhook belongs to."""

    @property
    def id(self) -> int: ...


class WebhookSubscriptions:
    def __init__(self, store: WebhookStore, events: EmspEvents) -> None:
        self._store = store
        self._events = events

    async def put(self, key: ApiKey, url: str) -> dict[str, Any]:
        """Set the key's webhook; it gets the changes from now on. A new secret each time."""
        if not url.startswith(("http://", "https://")) or len(url) > 512:
            raise EmspRequestError("invalid", "url: an absolute http(s) URL of at most 512 chars")
        start = await self._events.last_id()
        secret = secrets.token_urlsafe(32)
        await self._store.put(key.id, url, secret, start, utcnow())
        self._events.signal.notify()
        return {"url": url, "secret": secret}

    async def get(self, key: ApiKey) -> dict[str, Any] | None:
        hook = await self._store.get(key.id)
        if hook is None:
            return None
        return {
            "url": hook.url,
            "delivered_up_to_event": hook.cursor,
            "failed_attempts": hook.attempts,
            "next_attempt_at": ocpi_datetime(hook.next_attempt_at) if hook.attempts else None,
            "last_error": hook.last_error,
            # Past the webhook horizon: nothing is sent until POST /emsp/webhook/retry (from
            # the cursor) or a new PUT (from now on).
            "dead_since": ocpi_datetime(hook.dead_at) if hook.dead_at else None,
        }

    async def resume(self, key: ApiKey) -> bool:
        """Send a dead webhook's events again from where it stopped."""
        resumed = await self._store.resume(key.id, utcnow())
        if resumed:
            self._events.signal.notify()
        return resumed

    async def delete(self, key: ApiKey) -> bool:
        return await self._store.delete(key.id)
