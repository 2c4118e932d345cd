"""OCPP payload validation: a compiled validator first, the library's own when it objects.

Why: the `ocpp` library validates every CALL and CALLRESULT with jsonschema's Draft4Validator,
which walks the schema keyword by keyword; fastjsonschema compiles each schema once into plain
Python, an order of magnitude faster (docs/performance.md#ocpp-validation). Only a frame it
accepts skips the library's validator; anything it refuses is validated again by the
library, so every OCPP error (FormatViolation, TypeConstraintViolation, ProtocolError) and its
text are exactly the library's. Compiled as draft 4 without formats and without filling in
defaults, as the library validates (Draft4Validator, no format checker, payload untouched).

For three OCPP 1.6 frames (RemoteStartTransaction and SetChargingProfile calls,
GetCompositeSchedule results) the library first round-trips the payload through JSON to read
its floats as Decimals, so that a limit of 21.4 passes `multipleOf: 0.1`. That round trip is a
large part of what a RemoteStartTransaction costs to send; `validate_payload` skips it when the
payload holds no float at all, where it changes nothing (an integer is a multiple of 0.1 either
way). Anything the compiled check refuses still goes the library's whole way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import fastjsonschema
import ocpp.messages
from ocpp.messages import Call, CallResult

_DRAFT4 = "http://json-schema.org/draft-04/schema#"
_library_get_validator = ocpp.messages.get_validator
_library_validate_payload = ocpp.messages._validate_payload


class FastFirst:
    """Stands where the library expects its validator; only `validate` is asked of it."""

    def __init__(self, library: Any) -> None:
        self.library = library
        self._fast: Callable[[Any], Any] = fastjsonschema.compile(
            {**library.schema, "$schema": _DRAFT4},
            use_default=False,
            use_formats=False,
            detailed_exceptions=False,
        )

    def accepts(self, payload: Any) -> bool:
        try:
            self._fast(payload)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    def validate(self, payload: Any) -> None:
        if not self.accepts(payload):
            self.library.validate(payload)  # raises the error the library maps to OCPP's


_cache: dict[tuple[Any, ...], Any] = {}


def get_validator(
    message_type_id: int, action: str, ocpp_version: str, parse_float: Callable[..., Any] = float
) -> Any:
    """A FastFirst; for the library's Decimal reading of floats, a validator of the library's
    own kind over the schema read with Decimals (the compiled code divides by float multiples
    and cannot take a Decimal payload)."""
    key = (message_type_id, action, ocpp_version, parse_float)
    validator = _cache.get(key)
    if validator is None:
        library = _library_get_validator(message_type_id, action, ocpp_version)
        if parse_float is float:
            validator = FastFirst(library)
        else:
            # The library caches one validator per schema whatever `parse_float` was asked
            # (its cache key leaves it out), so the Decimal reading is made here, once.
            schema = json.loads(json.dumps(library.schema, default=float), parse_float=parse_float)
            validator = type(library)(schema)
        _cache[key] = validator
    return validator


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return False


def validate_payload(message: Call | CallResult, ocpp_version: str) -> None:
    if type(message) in (Call, CallResult) and not _has_float(message.payload):
        try:
            validator = get_validator(message.message_type_id, message.action, ocpp_version)
        except (OSError, ValueError):
            pass  # no schema for the action: the library says so its own way
        else:
            if validator.accepts(message.payload):
                return
    _library_validate_payload(message, ocpp_version)


def install() -> None:
    """The library's `validate_payload` looks `_validate_payload` up in its module on each call,
    and `_validate_payload` looks up `get_validator`."""
    ocpp.messages.get_validator = get_validator
    ocpp.messages._validate_payload = validate_payload
