"""API keys' webhooks and their delivery state, in SQL (the WebhookStore of
service/emsp/store_ports.py). The lease is a conditional UPDATE, so two workers, in one process
or on several nodes, never hold the same webhook at once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chargegate.service.emsp.records import Webhook

from .emsp_rows import as_record
from .models import EmspWebhook, OperatorKey


def _free(now: datetime) -> ColumnElement[bool]:
    """No worker holds the webhook's lease at `now`."""
    return or_(EmspWebhook.lease_until.is_(None), EmspWebhook.lease_until < now)


class EmspWebhooksSql:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def put(self, api_key_id: int, url: str, secret: str, cursor: int, now: datetime) -> None:
        async with self._sessions.begin() as s:
            hook = await s.scalar(select(EmspWebhook).where(EmspWebhook.api_key_id == api_key_id))
            if hook is None:
                hook = EmspWebhook(api_key_id=api_key_id, created_at=now)
                s.add(hook)
            hook.url, hook.secret, hook.cursor = url, secret, cursor
            hook.attempts, hook.next_attempt_at, hook.last_error = 0, now, None
            hook.lease_until = hook.failing_since = hook.dead_at = None

    async def get(self, api_key_id: int) -> Webhook | None:
        async with self._sessions() as s:
            hook = await s.scalar(select(EmspWebhook).where(EmspWebhook.api_key_id == api_key_id))
            return as_record(Webhook, hook) if hook is not None else None

    async def delete(self, api_key_id: int) -> bool:
        async with self._sessions.begin() as s:
            hook = await s.scalar(select(EmspWebhook).where(EmspWebhook.api_key_id == api_key_id))
            if hook is None:
                return False
            await s.delete(hook)
        return True

    async def due(self, now: datetime) -> list[Webhook]:
        async with self._sessions() as s:
            rows = await s.scalars(
                select(EmspWebhook).where(
                    EmspWebhook.next_attempt_at <= now,
                    EmspWebhook.dead_at.is_(None),
                    _free(now),
                )
            )
            return [as_record(Webhook, row) for row in rows]

    async def resume(self, api_key_id: int, now: datetime) -> bool:
        async with self._sessions.begin() as s:
            done = await s.execute(
                update(EmspWebhook)
                .where(EmspWebhook.api_key_id == api_key_id, EmspWebhook.dead_at.is_not(None))
                .values(dead_at=None, failing_since=None, attempts=0, next_attempt_at=now)
            )
        return bool(done.rowcount)  # type: ignore[attr-defined]

    async def claim(self, webhook_id: int, now: datetime, until: datetime) -> Webhook | None:
        async with self._sessions.begin() as s:
            won = await s.execute(
                update(EmspWebhook)
                .where(
                    EmspWebhook.id == webhook_id,
                    _free(now),
                )
                .values(lease_until=until)
            )
            if won.rowcount != 1:  # type: ignore[attr-defined]
                return None
            hook = await s.get(EmspWebhook, webhook_id)
            return as_record(Webhook, hook) if hook is not None else None

    async def delivered(
        self,
        webhook: Webhook,
        *,
        cursor: int,
        attempts: int,
        last_error: str | None,
        next_attempt_at: datetime,
        failing_since: datetime | None = None,
        dead_at: datetime | None = None,
    ) -> None:
        async with self._sessions.begin() as s:
            # Only if the webhook was not set anew meanwhile (a new secret, a new cursor). The
            # secret is sealed with a fresh IV each time, so it is compared opened, here.
            hook = await s.scalar(
                select(EmspWebhook).where(EmspWebhook.id == webhook.id).with_for_update()
            )
            if hook is None or hook.secret != webhook.secret:
                return
            await s.execute(
                update(EmspWebhook)
                .where(EmspWebhook.id == webhook.id)
                .values(
                    cursor=cursor,
                    lease_until=None,
                    attempts=attempts,
                    last_error=last_error,
                    next_attempt_at=next_attempt_at,
                    failing_since=failing_since,
                    dead_at=dead_at,
                )
            )

    async def key_scopes(self, api_key_id: int) -> frozenset[str]:
        async with self._sessions() as s:
            key = await s.get(OperatorKey, api_key_id)
        return frozenset(key.scopes.split()) if key is not None else frozenset()
