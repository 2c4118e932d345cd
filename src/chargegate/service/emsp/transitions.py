"""One writer at a time per eMSP command: read it, let the state machine decide, write the
change `WHERE revision = <read>` with its events in the same transaction, and read again if
another writer came first."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from chargegate.domain import emsp_commands as ec
from chargegate.domain.clock import utcnow
from chargegate.domain.commands import CommandType
from chargegate.domain.emsp_commands import EmspCommandState, Snapshot, Transition

from .events import EmspEvents
from .records import SentCommand
from .store_ports import CommandWrites
from .views import as_of, command_view

log = logging.getLogger(__name__)

_RETRIES = 20

# Reads the command as stored; answers the state machine's transition and the columns to write.
Decide = Callable[[SentCommand], tuple[Transition, dict[str, Any]]]


class _Lost(Exception):
    """Another writer changed the command between our read and our write: read again."""


def snapshot(c: SentCommand) -> Snapshot:
    """The parts of the command the state machine decides on."""
    return Snapshot(
        CommandType(c.type),
        EmspCommandState(c.state),
        c.response_result,
        c.result,
        c.response_status_code,
    )


class Transitions:
    def __init__(self, events: EmspEvents) -> None:
        self._events = events

    async def apply(self, command_id: str, decide: Decide) -> tuple[SentCommand, Transition]:
        """The command as written (or as read, when there was nothing to change) and the
        transition taken."""
        for _ in range(_RETRIES):
            try:
                async with self._events.writing() as tx:
                    c = await tx.command(command_id)
                    assert c is not None
                    decided, values = decide(c)
                    # Final means final, whatever a use case decided (domain/emsp_commands.py).
                    transition = ec.settled(snapshot(c), decided)
                    if transition is not decided:
                        log.warning("command %s: %s", command_id, transition.note)
                        values = {}
                    if transition.state.value == c.state and not transition.events and not values:
                        return c, transition
                    values.update(
                        state=transition.state.value, revision=c.revision + 1, updated_at=utcnow()
                    )
                    written = await tx.update_command(command_id, c.revision, values)
                    if written is None:
                        raise _Lost
                    view = await command_view(tx, written)
                    for kind in transition.events:
                        tx.append_event(written, kind, as_of(kind, view))
                return written, transition
            except _Lost:
                continue
        raise RuntimeError(f"command {command_id}: too many concurrent changes")

    @staticmethod
    async def emit(tx: CommandWrites, command_id: str, kind: ec.EventKind) -> None:
        """An event about something linked to the command (its Session, its CDR), written in
        the caller's `EmspEvents.writing()` transaction."""
        c = await tx.command(command_id)
        if c is not None:
            tx.append_event(c, kind, await command_view(tx, c))
