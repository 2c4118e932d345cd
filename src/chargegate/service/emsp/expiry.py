"""Commands whose outcome will not come: the CPO's announced timeout passed, or the process
that sent them stopped before it recorded the CPO's answer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chargegate.domain import emsp_commands as ec
from chargegate.domain.clock import utcnow
from chargegate.domain.emsp_commands import EmspCommandState, Transition
from chargegate.settings import Settings

from .events import EmspEvents
from .records import SentCommand
from .transitions import Transitions, snapshot

NO_ANSWER = (
    "no answer from the CPO was recorded (the gateway stopped while sending?); the CPO may have "
    "the command, so check its Sessions before sending it again"
)


class ResolveExpired:
    def __init__(self, settings: Settings, events: EmspEvents, transitions: Transitions) -> None:
        self._settings = settings
        self._events = events
        self._transitions = transitions

    async def __call__(self) -> int:
        """EXPIRED for commands whose announced timeout passed; FAILED for commands sent by a
        process that stopped before it recorded the CPO's answer. Returns how many were due."""
        now = utcnow()
        # Longer than a send can take (the request and its answer, each within the timeout).
        stale = now - timedelta(seconds=2 * self._settings.emsp_http_timeout + 5)
        async with self._events.reading() as reads:
            due = await reads.due_commands(now, stale)
        for command_id in due:
            await self._transitions.apply(command_id, _decide)
        return len(due)


def _decide(c: SentCommand) -> tuple[Transition, dict[str, Any]]:
    transition = ec.on_deadline(snapshot(c))
    if transition.state is EmspCommandState.FAILED:
        return transition, {"failure": NO_ANSWER}
    return transition, {}
