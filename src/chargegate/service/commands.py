"""The CPO's command use cases behind one name: submitting (command_submission.py), carrying
to the station (command_dispatch.py) and resolving exactly once (command_outcomes.py)."""

from __future__ import annotations

from chargegate.cluster.router import StationRouter
from chargegate.settings import Settings

from .command_dispatch import CommandDispatch
from .command_outcomes import CommandOutcomes
from .command_submission import CommandSubmission, Refused
from .parties import PartyCache
from .ports import CommandStore, DeliverNow, OutboxSignal, PeerWire

__all__ = ["CommandService", "Refused"]


class CommandService:
    """What the OCPI adapter and the sweeper call; each job is done by its own class."""

    def __init__(
        self,
        settings: Settings,
        store: CommandStore,
        router: StationRouter,
        wire: PeerWire,
        notify: OutboxSignal,
        parties: PartyCache,
        deliver_now: DeliverNow | None = None,
    ) -> None:
        """With `deliver_now`, a result is POSTed by the task that decided it, right after its
        commit, instead of waiting for the delivery worker's next round."""
        self.outcomes = CommandOutcomes(settings, store, wire, notify, parties, deliver_now)
        self.dispatch = CommandDispatch(store, router, self.outcomes)
        self.submission = CommandSubmission(settings, store, router, self.dispatch, self.outcomes)
        # The jobs' own methods, bound once (no extra call per command).
        self.submit = self.submission.submit
        self.resolve = self.outcomes.resolve
        self.resolve_expired = self.outcomes.resolve_expired

    async def stop(self) -> None:
        await self.dispatch.stop()
        await self.outcomes.stop()
