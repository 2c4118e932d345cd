"""Rows of the eMSP tables as the service's plain records (service/emsp/records.py): the
records' fields are named as the columns."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

R = TypeVar("R")


def as_record(record_type: type[R], row: Any) -> R:
    """The record of `record_type` with the row's values."""
    names = [f.name for f in dataclasses.fields(record_type)]  # type: ignore[arg-type]
    return record_type(**{name: getattr(row, name) for name in names})


def column_values(record: Any) -> dict[str, Any]:
    """A record's values by column name, for a new row (a key still None is left to the
    database)."""
    values = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    return {name: value for name, value in values.items() if not (name == "pk" and value is None)}
