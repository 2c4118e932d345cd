"""Reading eMSP commands for the API: one by id, or a page of them, as the key may see them."""

from __future__ import annotations

from typing import Any

from chargegate.domain import emsp_commands as ec
from chargegate.domain.emsp_commands import EmspRequestError

from .events import EmspEvents
from .peers import EmspPeers
from .views import Requester, command_view, visible


class CommandQueries:
    def __init__(self, events: EmspEvents, peers: EmspPeers) -> None:
        self._events = events
        self._peers = peers

    async def get(self, requester: Requester, command_id: str) -> dict[str, Any]:
        async with self._events.reading() as reads:
            c = await reads.command(command_id)
            if c is None or not visible(requester, c):
                raise EmspRequestError("not_found", f"no command {command_id!r}")
            return await command_view(reads, c)

    async def list(
        self,
        requester: Requester,
        *,
        peer: str | None = None,
        state: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Newest first; a driver key sees its own commands only."""
        peer_id = (await self._peers.find(peer, connected=False)).id if peer else None
        async with self._events.reading() as reads:
            rows = await reads.commands(
                api_key_id=None if ec.sees_all(requester.scopes) else requester.key_id,
                peer_id=peer_id,
                state=state.upper() if state else None,
                limit=limit,
                offset=offset,
            )
            return [await command_view(reads, c) for c in rows]
