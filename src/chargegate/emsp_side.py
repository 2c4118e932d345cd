"""The eMSP role's services, wired together for app.py (the composition root) and the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chargegate.delivery.webhooks import WebhookWorker
from chargegate.ocpi.emsp.registration import OcpiHandshake
from chargegate.ocpi.emsp.sender import CommandSender
from chargegate.service.emsp.commands import EmspCommands
from chargegate.service.emsp.events import EmspEvents
from chargegate.service.emsp.peers import EmspPeers
from chargegate.service.emsp.receipts import EmspReceipts
from chargegate.service.emsp.webhooks import WebhookSubscriptions
from chargegate.settings import Settings
from chargegate.store.emsp_commands_sql import EmspCommandsSql
from chargegate.store.emsp_peers_sql import EmspPeersSql
from chargegate.store.emsp_webhooks_sql import EmspWebhooksSql

log = logging.getLogger(__name__)


class EmspSide:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        client: httpx.AsyncClient,
    ) -> None:
        self._settings = settings
        self.events = EmspEvents(EmspCommandsSql(sessions, postgres=not settings.is_sqlite))
        self.peers = EmspPeers(settings, EmspPeersSql(sessions), OcpiHandshake(client, settings))
        self.commands = EmspCommands(
            settings,
            self.events,
            self.peers,
            CommandSender(client, settings.emsp_http_timeout),
        )
        self.receipts = EmspReceipts(settings, self.events, self.commands)
        webhooks = EmspWebhooksSql(sessions)
        self.subscriptions = WebhookSubscriptions(webhooks, self.events)
        self.webhooks = WebhookWorker(settings, webhooks, client, self.events)
        self._sweeper: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.webhooks.start()
        self._sweeper = asyncio.create_task(self._sweep(), name="emsp-expiry")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.webhooks.stop()

    async def _sweep(self) -> None:
        while True:
            try:
                await self.commands.resolve_expired()
            except Exception:
                log.exception("eMSP command expiry sweep failed")
            await asyncio.sleep(self._settings.sweep_interval)
