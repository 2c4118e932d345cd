"""OCPP payload validation: a compiled validator first, the library's own when it objects.

Why: the `ocpp` library validates every CALL and CALLRESULT with jsonschema's Draft4Validator,
which walks the schema keyword by keyword: 15-30 µs per frame, several frames per command.
fastjsonschema compiles each schema once into plain Python (about 1 µs per frame). Only a
frame it accepts skips the library's validator; anything it refuses is validated again by the
library, so every OCPP error (FormatViolation, TypeConstraintViolation, ProtocolError) and its
text are exactly the library's. Compiled as draft 4 without formats and without filling in
defaults, as the library validates (Draft4Validator, no format checker, payload untouched).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fastjsonschema
import ocpp.messages

_DRAFT4 = "http://json-schema.org/draft-04/schema#"
_library_get_validator = ocpp.messages.get_validator


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


_cache: dict[tuple[Any, ...], FastFirst] = {}


def get_validator(
    message_type_id: int, action: str, ocpp_version: str, parse_float: Callable[..., Any] = float
) -> FastFirst:
    key = (message_type_id, action, ocpp_version, parse_float)
    validator = _cache.get(key)
    if validator is None:
        library = _library_get_validator(message_type_id, action, ocpp_version, parse_float)
        validator = _cache[key] = FastFirst(library)
    return validator


def install() -> None:
    """The library's `_validate_payload` looks `get_validator` up in its module on each call."""
    ocpp.messages.get_validator = get_validator
