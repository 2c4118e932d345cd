"""Pagination of GET list endpoints (transport_and_format, "Pagination")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from starlette.requests import Request

from chargegate.domain.clock import parse_datetime
from chargegate.store.listing import MAX_OFFSET

from . import status
from .envelope import OcpiError

MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Page:
    offset: int
    limit: int
    date_from: datetime | None
    date_to: datetime | None


def _int(request: Request, name: str, default: int, maximum: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise OcpiError(status.INVALID_PARAMETERS, f"{name} must be an integer") from exc
    if value < 0:
        raise OcpiError(status.INVALID_PARAMETERS, f"{name} must not be negative")
    if maximum is not None and value > maximum:
        raise OcpiError(status.INVALID_PARAMETERS, f"{name} must be at most {maximum}")
    return value


def _date(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return parse_datetime(raw)
    except ValueError as exc:
        raise OcpiError(status.INVALID_PARAMETERS, f"{name} is not a DateTime: {raw!r}") from exc


def page_of(request: Request) -> Page:
    limit = min(_int(request, "limit", MAX_LIMIT), MAX_LIMIT)
    return Page(
        _int(request, "offset", 0, MAX_OFFSET),
        limit,
        _date(request, "date_from"),
        _date(request, "date_to"),
    )


def headers(request: Request, page: Page, total: int) -> dict[str, str]:
    """X-Total-Count and X-Limit always; Link rel="next" while more remain."""
    out = {"X-Total-Count": str(total), "X-Limit": str(page.limit)}
    next_offset = page.offset + page.limit
    if next_offset < total:
        url = request.url.include_query_params(offset=next_offset, limit=page.limit)
        out["Link"] = f'<{url}>; rel="next"'
    return out
