"""An API key's webhook: the URL that gets every change of its commands (delivery/webhooks.py
POSTs them), with a new signing secret each time it is set."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chargegate.domain.clock import ocpi_datetime, utcnow
from chargegate.domain.emsp_commands import EmspRequestError
from chargegate.store.models import EmspWebhook, OperatorKey

from .events import EmspEvents


class WebhookSubscriptions:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], events: EmspEvents) -> None:
        self._sessions = sessions
        self._events = events

    async def put(self, key: OperatorKey, url: str) -> dict[str, Any]:
        """Set the key's webhook; it gets the changes from now on. A new secret each time."""
        if not url.startswith(("http://", "https://")) or len(url) > 512:
            raise EmspRequestError("invalid", "url: an absolute http(s) URL of at most 512 chars")
        start = await self._events.last_id()
        secret = secrets.token_urlsafe(32)
        now = utcnow()
        async with self._sessions.begin() as s:
            hook = await s.scalar(select(EmspWebhook).where(EmspWebhook.api_key_id == key.id))
            if hook is None:
                hook = EmspWebhook(api_key_id=key.id, created_at=now)
                s.add(hook)
            hook.url, hook.secret, hook.cursor = url, secret, start
            hook.attempts, hook.next_attempt_at, hook.last_error = 0, now, None
            hook.lease_until = None
        self._events.signal.notify()
        return {"url": url, "secret": secret}

    async def get(self, key: OperatorKey) -> dict[str, Any] | None:
        async with self._sessions() as s:
            hook = await s.scalar(select(EmspWebhook).where(EmspWebhook.api_key_id == key.id))
        if hook is None:
            return None
        return {
            "url": hook.url,
            "delivered_up_to_event": hook.cursor,
            "failed_attempts": hook.attempts,
            "next_attempt_at": ocpi_datetime(hook.next_attempt_at) if hook.attempts else None,
            "last_error": hook.last_error,
        }

    async def delete(self, key: OperatorKey) -> bool:
        async with self._sessions.begin() as s:
            hook = await s.scalar(select(EmspWebhook).where(EmspWebhook.api_key_id == key.id))
            if hook is None:
                return False
            await s.delete(hook)
        return True
