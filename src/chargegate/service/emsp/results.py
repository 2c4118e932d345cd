"""A CommandResult the CPO POSTed to one of our response_urls, recorded on its command."""

from __future__ import annotations

import logging
from typing import Any

from chargegate.domain import emsp_commands as ec
from chargegate.domain.clock import utcnow
from chargegate.domain.emsp_commands import Transition

from .events import EmspEvents
from .records import Peer, SentCommand
from .transitions import Transitions, snapshot

log = logging.getLogger(__name__)


class RecordResult:
    def __init__(self, events: EmspEvents, transitions: Transitions) -> None:
        self._events = events
        self._transitions = transitions

    async def __call__(
        self,
        peer: Peer,
        version: str,
        command: str,
        ref: str,
        result: str,
        message: str | None,
    ) -> str | None:
        """Raises LookupError when the URL is not one we gave this peer for this command;
        returns a note when the result was not taken (a duplicate, a late repeat)."""
        async with self._events.reading() as reads:
            command_id = await reads.command_for_result(ref, peer.id, command, version)
        if command_id is None:
            raise LookupError(ref)
        now = utcnow()

        def decide(c: SentCommand) -> tuple[Transition, dict[str, Any]]:
            transition = ec.on_result(snapshot(c), result)
            values: dict[str, Any] = {}
            if transition.store_result:
                values = {"result": result, "result_message": message, "result_at": now}
            return transition, values

        _, transition = await self._transitions.apply(command_id, decide)
        if transition.note:
            log.warning("command %s: %s", command_id, transition.note)
        return transition.note
