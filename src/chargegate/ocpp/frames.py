"""Reading an incoming OCPP-J frame defensively: a frame that is not a well-formed CALL,
CALLRESULT or CALLERROR becomes the CALLERROR the OCPP-J specification names for it
(docs/security.md#ocpp-j-robustness), never an exception in the read loop.

Why not the library's `unpack`: it raises without the unique id (so no CALLERROR can be sent),
reads any message type id, and lets a list or dict through as the id or the action, which then
fails deep in the library. The error codes also differ per version: OCPP-J 1.6 spells
FormationViolation and OccurenceConstraintViolation, 2.0.1 FormatViolation and
OccurrenceConstraintViolation, and adds RpcFrameworkError and MessageTypeNotSupported.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ocpp.exceptions import (
    FormationViolationError,
    FormatViolationError,
    OccurenceConstraintViolationError,
    OccurrenceConstraintViolationError,
    OCPPError,
    TypeConstraintViolationError,
)
from ocpp.messages import Call, CallError, CallResult, MessageType

from chargegate import json_text

# OCPP-J: a unique id is a string of at most 36 characters.
MAX_UNIQUE_ID = 36
# The CALLERROR id OCPP-J 2.0.1 uses when the offending message's id cannot be read.
UNREADABLE_ID = "-1"
# The deepest OCPP 1.6 / 2.0.1 schema nests 7 levels below the frame; a frame nested far deeper
# is not OCPP, and recursive code after the parser (validation, key conversion) must never meet
# one deep enough to exhaust Python's stack.
MAX_DEPTH = 32
# OCPP integers are 32-bit (1.6 §4.1 "integer", 2.0.1 part 2 "integer"); JSON allows any.
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
# The id of a frame too broken to parse, when its start is still readable: `[2, "abc", ...`.
_READABLE_START = re.compile(r'\s*\[\s*[0-9]+\s*,\s*"([^"\\]{1,36})"')


class RpcFrameworkError(OCPPError):
    """OCPP-J 2.0.1: the content is not a valid RPC request (the library has no class for it)."""

    code = "RpcFrameworkError"
    default_description = "Content of the message is not a valid OCPP-J RPC frame"


class MessageTypeNotSupportedError(OCPPError):
    """OCPP-J 2.0.1: a message type number this implementation does not support."""

    code = "MessageTypeNotSupported"
    default_description = "A message with a Message Type Number not supported was received"


class RefusedFrame(Exception):
    """A frame answered with `error`, sent as a CALLERROR for `unique_id` when `answer` (a CALL
    or a frame whose type cannot be read) and only logged otherwise: OCPP-J answers CALLs,
    never replies."""

    def __init__(self, unique_id: str, error: OCPPError, answer: bool = True) -> None:
        super().__init__(f"{error.code}: {error.description}")
        self.unique_id = unique_id
        self.error = error
        self.answer = answer


_SPELLING = {
    "1.6": {
        FormatViolationError.code: FormationViolationError,
        OccurrenceConstraintViolationError.code: OccurenceConstraintViolationError,
        RpcFrameworkError.code: FormationViolationError,
        MessageTypeNotSupportedError.code: FormationViolationError,
    },
    "2.0.1": {
        FormationViolationError.code: FormatViolationError,
        OccurenceConstraintViolationError.code: OccurrenceConstraintViolationError,
    },
}


def in_dialect(error: OCPPError, ocpp_version: str) -> OCPPError:
    """`error` with the code its OCPP-J version spells (the library raises 2.0.1's
    FormatViolation for a 1.6 payload too); codes the version lacks become their nearest."""
    replacement = _SPELLING.get(ocpp_version, {}).get(error.code)
    if replacement is None:
        return error
    return replacement(description=error.description, details=error.details)


def call_error_text(unique_id: str, error: OCPPError) -> str:
    return CallError(unique_id, error.code, error.description, error.details or {}).to_json()


def read_frame(raw: str) -> Call | CallResult | CallError:
    """The message in `raw`, or RefusedFrame saying what is wrong and to which id."""
    try:
        message = json_text.loads(raw)
    except (ValueError, RecursionError):
        raise _broken(raw, "the frame is not JSON (or nested too deep to read)") from None
    if not isinstance(message, list) or not message:
        raise RefusedFrame(UNREADABLE_ID, RpcFrameworkError(description="not a JSON array"))
    kind = message[0]
    unique_id = message[1] if len(message) > 1 else None
    if not isinstance(unique_id, str) or not 0 < len(unique_id) <= MAX_UNIQUE_ID:
        raise RefusedFrame(
            UNREADABLE_ID,
            RpcFrameworkError(description="the unique id is not a string of 1 to 36 characters"),
        )
    if type(kind) is not int:  # bool is an int, and not a message type
        raise RefusedFrame(
            unique_id, RpcFrameworkError(description="the message type id is not an integer")
        )
    if kind not in (MessageType.Call, MessageType.CallResult, MessageType.CallError):
        raise RefusedFrame(
            unique_id,
            MessageTypeNotSupportedError(description=f"message type {kind} is not supported"),
        )
    _check_depth(message, unique_id, answer=kind == MessageType.Call)
    if kind == MessageType.Call:
        return _call(message, unique_id)
    if kind == MessageType.CallResult:
        if len(message) != 3 or not isinstance(message[2], dict):
            raise _reply_refused(unique_id, "a CALLRESULT is [3, id, {payload}]")
        return CallResult(unique_id, message[2])
    if len(message) != 5 or not isinstance(message[2], str) or not isinstance(message[3], str):
        raise _reply_refused(unique_id, "a CALLERROR is [4, id, code, description, {details}]")
    return CallError(unique_id, message[2], message[3], message[4])


def _call(message: list[Any], unique_id: str) -> Call:
    if len(message) != 4 or not isinstance(message[2], str) or not message[2]:
        raise RefusedFrame(
            unique_id, RpcFrameworkError(description="a CALL is [2, id, action, {payload}]")
        )
    _check_values(message[3], unique_id)
    return Call(unique_id, message[2], message[3])


def _broken(raw: str, why: str) -> RefusedFrame:
    start = _READABLE_START.match(raw)
    if start is None:
        return RefusedFrame(UNREADABLE_ID, RpcFrameworkError(description=why))
    return RefusedFrame(start.group(1), FormatViolationError(description=why))


def _reply_refused(unique_id: str, why: str) -> RefusedFrame:
    return RefusedFrame(unique_id, RpcFrameworkError(description=why), answer=False)


def _check_depth(message: list[Any], unique_id: str, answer: bool) -> None:
    """Iteratively, so that the check itself cannot run out of stack."""
    pending: list[tuple[Any, int]] = [(message, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise RefusedFrame(
                unique_id,
                FormatViolationError(description=f"nested deeper than {MAX_DEPTH} levels"),
                answer,
            )
        if isinstance(value, dict):
            pending.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)


def _check_values(payload: Any, unique_id: str) -> None:
    """Numbers JSON allows but OCPP does not: integers beyond 32 bits, NaN and infinities
    (Python's reader takes `NaN` and `1e999`). The schema lets both through."""
    pending = [payload]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif type(value) is int and not _INT32_MIN <= value <= _INT32_MAX:
            raise RefusedFrame(
                unique_id,
                TypeConstraintViolationError(
                    description="an integer does not fit OCPP's 32-bit integer type"
                ),
            )
        elif isinstance(value, float) and not math.isfinite(value):
            raise RefusedFrame(
                unique_id,
                TypeConstraintViolationError(description=f"{value} is not a JSON number"),
            )
