"""A command we send as an eMSP, from the API request to its outcome (state machine and rules).

REQUESTED ──CPO answers ACCEPTED──▶ RESPONDED ──result POSTed──▶ RESULT
    │          (or 1000 with a CommandResponse   └──the CPO's timeout passes──▶ EXPIRED
    │           we cannot read)
    ├──CPO answers anything else──▶ RESPONDED (final: the CPO sends no result then)
    └──the CPO cannot be reached / answers an HTTP error──▶ FAILED

Final means final: once `is_final` holds, no transition changes the state again (`settled`
keeps every transition to that); a result after EXPIRED or FAILED is recorded as LATE_RESULT,
and 2.2.1's CANCELED_RESERVATION after an accepted reservation is the one later RESULT event
(docs/decisions.md#final-means-final).

A result can beat the CPO's synchronous answer to us (the CPO dispatches before it answers), so a
result for a REQUESTED command is kept until the answer is recorded, and both changes are then
told in their natural order.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .commands import CommandResultType, CommandType


class EmspCommandState(enum.StrEnum):
    REQUESTED = "REQUESTED"
    RESPONDED = "RESPONDED"
    RESULT = "RESULT"
    EXPIRED = "EXPIRED"
    FAILED = "FAILED"


class EventKind(enum.StrEnum):
    """What an event on the stream/webhook says happened to a command."""

    REQUESTED = "REQUESTED"
    RESPONDED = "RESPONDED"
    RESULT = "RESULT"
    EXPIRED = "EXPIRED"
    FAILED = "FAILED"
    LATE_RESULT = "LATE_RESULT"  # a result after EXPIRED: recorded, the state stays EXPIRED
    SESSION = "SESSION"  # the Session the command started was pushed or changed
    CDR = "CDR"


class EmspRequestError(Exception):
    """A request to the eMSP API that cannot be carried out; `kind` picks the HTTP status."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # invalid | forbidden | not_found | conflict | mismatch
        self.message = message


# What each OCPI version lets the CPO answer at once (CommandResponseType) and POST later
# (2.1.1: the same enum; 2.2.1: CommandResultType).
RESPONSE_VALUES: dict[str, frozenset[str]] = {
    "2.1.1": frozenset({"ACCEPTED", "REJECTED", "NOT_SUPPORTED", "TIMEOUT", "UNKNOWN_SESSION"}),
    "2.2.1": frozenset({"ACCEPTED", "REJECTED", "NOT_SUPPORTED", "UNKNOWN_SESSION"}),
}
RESULT_VALUES: dict[str, frozenset[str]] = {
    "2.1.1": RESPONSE_VALUES["2.1.1"],
    "2.2.1": frozenset(r.value for r in CommandResultType),
}
COMMANDS_OF_VERSION: dict[str, tuple[CommandType, ...]] = {
    "2.1.1": (
        CommandType.START_SESSION,
        CommandType.STOP_SESSION,
        CommandType.RESERVE_NOW,
        CommandType.UNLOCK_CONNECTOR,
    ),
    "2.2.1": tuple(CommandType),
}
# GIREVE IOP implements these two only (docs/decisions.md#gireve-iop).
GIREVE_COMMANDS = (CommandType.START_SESSION, CommandType.STOP_SESSION)

# API key scopes that may ask for commands, and the one that may unlock.
OPERATOR_SCOPE = "operator"
DRIVER_SCOPE = "driver"
READ_SCOPE = "read"


def check_allowed(command: CommandType, scopes: frozenset[str]) -> None:
    """UNLOCK_CONNECTOR is for the eMSP's operators only, never sent on an EV driver's behalf
    (every OCPI version; docs/decisions.md#unlock_connector-callers)."""
    if OPERATOR_SCOPE in scopes:
        return
    if DRIVER_SCOPE not in scopes:
        raise EmspRequestError(
            "forbidden", "this API key may only read; sending commands needs 'driver' or 'operator'"
        )
    if command is CommandType.UNLOCK_CONNECTOR:
        raise EmspRequestError(
            "forbidden",
            "UNLOCK_CONNECTOR may only be requested by an operator of the eMSP, never directly "
            "for an EV driver (OCPI Commands module); use a key with the 'operator' scope",
        )


def check_supported(command: CommandType, version: str, profile: str | None) -> None:
    if command not in COMMANDS_OF_VERSION[version]:
        raise EmspRequestError(
            "invalid",
            f"OCPI {version} has no {command.value}; the peer speaks {version}",
        )
    if profile == "gireve" and command not in GIREVE_COMMANDS:
        raise EmspRequestError(
            "invalid",
            f"GIREVE IOP does not implement {command.value}; it takes START_SESSION and "
            "STOP_SESSION only",
        )


def sees_all(scopes: frozenset[str]) -> bool:
    """Operator and read keys see every command; a driver key sees the ones it sent."""
    return bool(scopes & {OPERATOR_SCOPE, READ_SCOPE})


@dataclass(frozen=True, slots=True)
class CpoAnswer:
    """The CPO's synchronous answer to a command we sent, as far as it could be read.

    `failure` is set when there is no usable answer (connection error, HTTP error without an OCPI
    envelope); otherwise `status_code` is the envelope's and `result` the CommandResponse's
    (None when a 2xxx/3xxx answer carried none)."""

    status_code: int | None = None
    result: str | None = None
    timeout: int | None = None
    message: str | None = None
    failure: str | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The parts of a command a transition depends on."""

    type: CommandType
    state: EmspCommandState
    response_result: str | None
    result: str | None
    response_status_code: int | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    state: EmspCommandState
    events: tuple[EventKind, ...] = ()
    store_result: bool = False  # write the incoming result onto the command
    note: str | None = None  # why a result was not taken, for the CPO's status_message


def awaits_result(response_status_code: int | None, response_result: str | None) -> bool:
    """The CPO took the command, so its result may still come: it answered ACCEPTED, or it
    answered success (1000) with a CommandResponse we could not read (a result then tells what
    happened; its expiry ends the wait)."""
    return response_result == "ACCEPTED" or (
        response_status_code == 1000 and response_result is None
    )


def is_final(
    state: EmspCommandState, response_result: str | None, response_status_code: int | None = None
) -> bool:
    """Nothing more will change the command's state (a late result only adds an event)."""
    if state is EmspCommandState.RESPONDED:
        return not awaits_result(response_status_code, response_result)
    return state is not EmspCommandState.REQUESTED


def settled(now: Snapshot, transition: Transition) -> Transition:
    """`transition` as a final command may take it: its state stays, and only a late result,
    or 2.2.1's CANCELED_RESERVATION (a RESULT event on a RESULT), is told after it."""
    if not is_final(now.state, now.response_result, now.response_status_code):
        return transition
    if transition.state is now.state and set(transition.events) <= _AFTER_FINAL.get(
        now.state, frozenset()
    ):
        return transition
    return Transition(now.state, note=f"the command is final ({now.state.value}); not changed")


# What may still be told about a final command, by its state.
_AFTER_FINAL: dict[EmspCommandState, frozenset[EventKind]] = {
    EmspCommandState.RESPONDED: frozenset({EventKind.LATE_RESULT}),
    EmspCommandState.EXPIRED: frozenset({EventKind.LATE_RESULT}),
    EmspCommandState.FAILED: frozenset({EventKind.LATE_RESULT}),
    EmspCommandState.RESULT: frozenset({EventKind.RESULT}),  # CANCELED_RESERVATION only
}


def on_response(now: Snapshot) -> Transition:
    """The CPO's synchronous answer was recorded for a REQUESTED command. Whether it is final
    (anything but ACCEPTED) is read from the stored answer, see `is_final`."""
    if now.state is not EmspCommandState.REQUESTED:
        return Transition(now.state)
    if now.result is not None:
        # The result came first; tell both changes, in order.
        return Transition(EmspCommandState.RESULT, (EventKind.RESPONDED, EventKind.RESULT))
    return Transition(EmspCommandState.RESPONDED, (EventKind.RESPONDED,))


def on_failure(now: Snapshot) -> Transition:
    """Sending failed (connection, HTTP error, no answer recorded before a restart)."""
    if now.state is not EmspCommandState.REQUESTED:
        return Transition(now.state)
    if now.result is not None:
        # The CPO did get it: it sent a result.
        return Transition(EmspCommandState.RESULT, (EventKind.RESULT,))
    return Transition(EmspCommandState.FAILED, (EventKind.FAILED,))


def on_result(now: Snapshot, incoming: str) -> Transition:
    """A result POSTed to the command's response_url."""
    state = now.state
    if state is EmspCommandState.REQUESTED:
        return Transition(state, store_result=now.result is None)
    if state is EmspCommandState.RESPONDED and awaits_result(
        now.response_status_code, now.response_result
    ):
        return Transition(EmspCommandState.RESULT, (EventKind.RESULT,), store_result=True)
    if state is EmspCommandState.RESPONDED:
        # Final: the CPO did not take the command, and says now that it did something.
        if now.result is not None:
            return Transition(state, note=f"a late result ({now.result}) is already recorded")
        return Transition(state, (EventKind.LATE_RESULT,), store_result=True)
    if state in (EmspCommandState.EXPIRED, EmspCommandState.FAILED):
        if now.result is not None:
            return Transition(state, note=f"a late result ({now.result}) is already recorded")
        return Transition(state, (EventKind.LATE_RESULT,), store_result=True)
    # RESULT
    if now.result == incoming:
        return Transition(state)  # the CPO repeating itself: delivery retries are allowed
    if (
        now.type is CommandType.RESERVE_NOW
        and now.result == "ACCEPTED"
        and incoming == CommandResultType.CANCELED_RESERVATION.value
    ):
        # 2.2.1: the CPO cancels a reservation by POSTing to the RESERVE_NOW response_url again.
        return Transition(state, (EventKind.RESULT,), store_result=True)
    return Transition(
        state, note=f"result {now.result} is already recorded; {incoming} was not taken"
    )


def on_deadline(now: Snapshot) -> Transition:
    """The CPO's announced timeout passed (RESPONDED), or no answer was ever recorded
    (REQUESTED after a restart mid-send)."""
    if now.state is EmspCommandState.RESPONDED and awaits_result(
        now.response_status_code, now.response_result
    ):
        return Transition(EmspCommandState.EXPIRED, (EventKind.EXPIRED,))
    if now.state is EmspCommandState.REQUESTED:
        return on_failure(now)
    return Transition(now.state)
