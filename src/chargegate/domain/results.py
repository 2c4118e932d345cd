"""From a station's answer to the OCPI outcome (docs/decisions.md#asynchronous-results)."""

from __future__ import annotations

from .commands import CommandResultType, CommandType
from .station_calls import Outcome, StationReply

# OCPI EVSE statuses that decide how a rejected start is reported.
_OCCUPIED_STATUSES = frozenset({"CHARGING", "BLOCKED", "RESERVED"})
_INOPERATIVE_STATUSES = frozenset({"INOPERATIVE", "OUTOFORDER"})

_CALL_ERRORS_MEANING_NOT_SUPPORTED = frozenset({"NotImplemented", "NotSupported"})


def command_result(
    command: CommandType, reply: StationReply, evse_status: str | None = None
) -> tuple[CommandResultType, str]:
    """Map a station reply to the 2.2.1 CommandResultType and a message a person can read."""
    outcome = reply.outcome
    said = f"station answered {reply.status or outcome.value}"
    if outcome is Outcome.TIMEOUT:
        return CommandResultType.TIMEOUT, "no answer from the charge point before the deadline"
    if outcome is Outcome.CONNECTION_LOST:
        return CommandResultType.FAILED, "connection to the charge point was lost during the call"
    if outcome is Outcome.OFFLINE:
        return CommandResultType.FAILED, "charge point is offline"
    if outcome is Outcome.CALL_ERROR:
        text = f"charge point answered CALLERROR {reply.error_code}: {reply.description}".rstrip(
            ": "
        )
        if reply.error_code in _CALL_ERRORS_MEANING_NOT_SUPPORTED:
            return CommandResultType.NOT_SUPPORTED, text
        return CommandResultType.FAILED, text
    if outcome is Outcome.ACCEPTED:
        return CommandResultType.ACCEPTED, ""
    if outcome is Outcome.NOT_SUPPORTED:
        return CommandResultType.NOT_SUPPORTED, said

    if command is CommandType.START_SESSION:
        if evse_status in _OCCUPIED_STATUSES:
            return CommandResultType.EVSE_OCCUPIED, f"{said}; EVSE is {evse_status}"
        if evse_status in _INOPERATIVE_STATUSES:
            return CommandResultType.EVSE_INOPERATIVE, f"{said}; EVSE is {evse_status}"
        return CommandResultType.REJECTED, said
    if command is CommandType.RESERVE_NOW:
        if outcome is Outcome.OCCUPIED:
            return CommandResultType.EVSE_OCCUPIED, said
        if outcome in (Outcome.FAULTED, Outcome.UNAVAILABLE):
            return CommandResultType.EVSE_INOPERATIVE, said
        return CommandResultType.REJECTED, said
    if command is CommandType.CANCEL_RESERVATION:
        return CommandResultType.UNKNOWN_RESERVATION, said
    if command is CommandType.UNLOCK_CONNECTOR:
        if outcome in (Outcome.UNLOCK_FAILED, Outcome.UNKNOWN_CONNECTOR):
            return CommandResultType.FAILED, said
        return CommandResultType.REJECTED, said
    return CommandResultType.REJECTED, said


def collapse_to_211(result: CommandResultType) -> str:
    """2.1.1 posts a CommandResponse whose enum only has ACCEPTED/REJECTED/NOT_SUPPORTED/TIMEOUT."""
    if result in (
        CommandResultType.ACCEPTED,
        CommandResultType.NOT_SUPPORTED,
        CommandResultType.TIMEOUT,
    ):
        return result.value
    return "REJECTED"
