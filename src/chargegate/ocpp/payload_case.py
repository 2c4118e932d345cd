"""OCPP payloads between the library's snake_case dataclasses and the wire's camelCase dicts,
converted exactly as the `ocpp` library converts them, with each key's conversion remembered.

Why not the library's functions as they are: `serialize_as_dict` deep-copies the dataclass and
walks it again, `snake_to_camel_case` makes a dozen string replacements per key and
`camel_to_snake_case` two regular-expression substitutions, for every key of every call
(docs/performance.md#ocpp-payload-keys). Keys are the schemas' field names, a few hundred, so
each key goes through the library's own function once and is then looked up.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Any

from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case

# Keys a station sends are validated against the schema first, but stay bounded anyway.
_KEYS_REMEMBERED = 4096


@lru_cache(maxsize=_KEYS_REMEMBERED)
def camel_key(key: str) -> str:
    converted: dict[str, None] = snake_to_camel_case({key: None})
    return next(iter(converted))


@lru_cache(maxsize=_KEYS_REMEMBERED)
def snake_key(key: str) -> str:
    converted: dict[str, None] = camel_to_snake_case({key: None})
    return next(iter(converted))


def to_wire(payload: Any) -> Any:
    """`remove_nones(snake_to_camel_case(serialize_as_dict(payload)))` in one walk: a dataclass
    or dict becomes a dict with camelCase keys, without the entries that are None; lists lose
    their None items; anything else is kept as it is."""
    if dataclasses.is_dataclass(payload) and not isinstance(payload, type):
        return {
            camel_key(field.name): to_wire(value)
            for field in dataclasses.fields(payload)
            if (value := getattr(payload, field.name)) is not None
        }
    if isinstance(payload, dict):
        return {
            camel_key(key): to_wire(value) for key, value in payload.items() if value is not None
        }
    if isinstance(payload, list):
        return [to_wire(item) for item in payload if item is not None]
    return payload


def from_wire(payload: Any) -> Any:
    """`camel_to_snake_case(payload)`: every dict's keys in snake_case, at every depth."""
    if isinstance(payload, dict):
        return {snake_key(key): from_wire(value) for key, value in payload.items()}
    if isinstance(payload, list):
        return [from_wire(item) for item in payload]
    return payload
