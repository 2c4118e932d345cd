"""The CPO's synchronous answer to a command we sent (its CommandResponse, or why there was
none), recorded on the command."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from chargegate.domain import emsp_commands as ec
from chargegate.domain.clock import utcnow
from chargegate.domain.emsp_commands import CpoAnswer, Transition
from chargegate.settings import Settings

from .records import SentCommand
from .transitions import Transitions, snapshot


class RecordAnswer:
    def __init__(self, settings: Settings, transitions: Transitions) -> None:
        self._settings = settings
        self._transitions = transitions

    async def __call__(self, command_id: str, answer: CpoAnswer) -> None:
        """RESPONDED with the CPO's answer (RESULT if its result came first), or FAILED when
        there is no usable answer. An ACCEPTED command expires after the timeout the CPO
        announced (2.2.1) or our default."""
        now = utcnow()

        def decide(c: SentCommand) -> tuple[Transition, dict[str, Any]]:
            current = snapshot(c)
            if answer.failure is not None:
                return ec.on_failure(current), {"failure": answer.failure}
            announced = answer.timeout if c.ocpi_version == "2.2.1" else None
            values: dict[str, Any] = {
                "response_status_code": answer.status_code,
                "response_result": answer.result,
                "response_message": answer.message,
                "response_timeout": announced,
                "responded_at": now,
            }
            if ec.awaits_result(answer.status_code, answer.result):
                wait = announced or self._settings.emsp_default_result_timeout
                values["expires_at"] = now + timedelta(seconds=wait)
            answered = dataclasses.replace(
                current, response_result=answer.result, response_status_code=answer.status_code
            )
            return ec.on_response(answered), values

        await self._transitions.apply(command_id, decide)
