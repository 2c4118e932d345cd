"""Field types shared by both OCPI versions' request models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

from chargegate.domain.clock import parse_datetime


def _datetime(value: object) -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or len(value) > 25:
        raise ValueError("must be an OCPI DateTime string (UTC, at most 25 characters)")
    try:
        return parse_datetime(value)
    except ValueError as exc:
        raise ValueError(f"not a DateTime: {value!r}") from exc


def _url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an absolute http(s) URL")
    return value


DateTime = Annotated[datetime, BeforeValidator(_datetime)]
Url = Annotated[str, Field(max_length=255), AfterValidator(_url)]


def string(max_length: int) -> object:
    return Field(min_length=1, max_length=max_length)
