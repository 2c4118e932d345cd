"""Carrying a stored command to its station, past the HTTP answer, and resolving it with the
station's answer."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from chargegate.cluster.router import StationRouter
from chargegate.domain import station_calls as sc
from chargegate.domain.clock import utcnow
from chargegate.domain.commands import CommandType
from chargegate.domain.results import command_result
from chargegate.domain.station_calls import Outcome

from .background import BackgroundTasks
from .command_outcomes import CommandOutcomes
from .ports import CommandStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StationCall:
    """What a stored command asks of its station, and by when."""

    command_id: str
    command_type: CommandType
    station_id: str
    connector_id: int | None
    request: sc.StationRequest
    deadline: datetime


class CommandDispatch:
    def __init__(
        self, store: CommandStore, router: StationRouter, outcomes: CommandOutcomes
    ) -> None:
        self._store = store
        self._router = router
        self._outcomes = outcomes
        self._tasks = BackgroundTasks()

    def start(self, call: StationCall) -> None:
        """Send the call in a task of its own: the CommandResponse does not wait for it."""
        self._tasks.spawn(self.dispatch(call))

    async def dispatch(self, call: StationCall) -> None:
        try:
            # Time already spent (storing, waiting for the station's queue) counts too.
            remaining = (call.deadline - utcnow()).total_seconds()
            reply = await self._router.call(call.station_id, call.request, remaining)
            # Only a refused start asks why (occupied, inoperative): skip the read otherwise.
            evse_status = (
                await self._store.evse_status(call.station_id, call.connector_id)
                if call.command_type is CommandType.START_SESSION
                and reply.outcome is not Outcome.ACCEPTED
                and call.connector_id
                else None
            )
            result, message = command_result(call.command_type, reply, evse_status)
            await self._outcomes.resolve(
                call.command_id,
                call.command_type,
                result,
                message,
                station_status=reply.status,
                deliver_here=True,
            )
        except Exception:
            # The sweeper resolves it as TIMEOUT at its deadline; nothing is left pending.
            log.exception("dispatch of command %s failed", call.command_id)

    async def stop(self) -> None:
        await self._tasks.stop()
