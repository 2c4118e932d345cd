"""A command's one outcome: recorded with its result's outbox row, then delivered (by the task
that decided it, or by the delivery worker); TIMEOUT for commands past their deadline."""

from __future__ import annotations

import logging
from typing import Any

from chargegate.domain.clock import utcnow
from chargegate.domain.commands import CommandResultType, CommandState, CommandType
from chargegate.settings import Settings

from .background import BackgroundTasks
from .outbox import outbox_values
from .parties import PartyCache
from .ports import (
    CommandStore,
    Decision,
    DeliverNow,
    OutboxSignal,
    PeerWire,
    ReservationFollows,
    ResultRow,
)

log = logging.getLogger(__name__)

_PENDING = CommandState.PENDING.value
_RESOLVED = CommandState.RESOLVED.value
TIMEOUT_MESSAGE = "no answer from the charge point before the deadline"


class CommandOutcomes:
    def __init__(
        self,
        settings: Settings,
        store: CommandStore,
        wire: PeerWire,
        notify: OutboxSignal,
        parties: PartyCache,
        deliver_now: DeliverNow | None = None,
    ) -> None:
        """With `deliver_now`, a result is POSTed by the task that decided it, right after its
        commit, instead of waiting for the delivery worker's next round."""
        self._settings = settings
        self._store = store
        self._wire = wire
        self._notify = notify
        self._parties = parties
        self._deliver_now = deliver_now
        self._tasks = BackgroundTasks()

    async def resolve(
        self,
        command_id: str,
        command_type: CommandType,
        result: CommandResultType,
        message: str | None,
        station_status: str | None = None,
        deliver_here: bool = False,
    ) -> bool:
        """Decide the command's one outcome and queue its delivery, in one transaction.
        With `deliver_here`, the result is POSTed before this returns (by a caller with nothing
        else to do: the dispatch task, which then needs no second task for it).

        Returns False if another path (a late answer, the sweeper) decided it first."""
        decision = Decision(
            command_id=command_id,
            pending=_PENDING,
            state=_RESOLVED,
            result=result.value,
            message=message or None,
            station_status=station_status,
            now=utcnow(),
        )
        recorded = await self._store.record_outcome(
            decision, self._result_row(result, message), _reservation_follows(command_type, result)
        )
        if recorded is None:
            log.info("command %s already resolved; %s ignored", command_id, result)
            return False
        if self._deliver_now is not None:
            party = await self._parties.load(recorded.party_id)
            assert party is not None
            if deliver_here:
                await self._deliver_now(recorded.row, party)
            else:
                self._tasks.spawn(self._deliver_now(recorded.row, party))
        if recorded.queued_more or self._deliver_now is None:
            self._notify()
        return True

    async def resolve_expired(self) -> int:
        """Resolve as TIMEOUT every pending command past its deadline (after a restart, or
        when a dispatch died). Whichever node runs this first wins; the update is conditional."""
        count = 0
        for command_id, command_type in await self._store.expired(utcnow()):
            if await self.resolve(
                command_id, CommandType(command_type), CommandResultType.TIMEOUT, TIMEOUT_MESSAGE
            ):
                count += 1
        return count

    def _result_row(self, result: CommandResultType, message: str | None) -> ResultRow:
        """The result's outbox row before its command is read; the store fills in what comes
        from the command, the body in the command's OCPI version among it."""
        wire = self._wire

        def render(version: str) -> dict[str, Any]:
            return wire.command_result(version, result, message)

        return ResultRow(
            render=render,
            values=outbox_values(
                kind="COMMAND_RESULT",
                party_id=0,
                party_version=None,
                method="POST",
                url="",
                body={},
                correlation_id=None,
                horizon=self._settings.delivery_result_horizon,
                lease_seconds=self._settings.delivery_lease if self._deliver_now else None,
            ),
        )

    async def stop(self) -> None:
        await self._tasks.stop()


def _reservation_follows(
    command_type: CommandType, result: CommandResultType
) -> ReservationFollows | None:
    """A RESERVE_NOW's reservation becomes ACTIVE (in 2.2.1 with a Session) or FAILED; an
    accepted CANCEL_RESERVATION cancels the one it names."""
    accepted = result is CommandResultType.ACCEPTED
    if command_type is CommandType.RESERVE_NOW:
        return ReservationFollows(
            by_command=True, status="ACTIVE" if accepted else "FAILED", opens_session=accepted
        )
    if command_type is CommandType.CANCEL_RESERVATION:
        return ReservationFollows(by_command=False, status="CANCELLED" if accepted else None)
    return None
