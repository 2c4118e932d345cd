"""One page of a list read from the database, with how many rows the whole list has: what the
paginated GET endpoints (OCPI's X-Total-Count, the operator API's `total`) answer with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.elements import ColumnElement

T = TypeVar("T")

# The largest integer both engines bind (signed 64 bits): an OFFSET or a row key past it fails
# the query, so adapters refuse it as a bad parameter first.
MAX_OFFSET = 2**63 - 1
MAX_KEY = MAX_OFFSET


@dataclass(frozen=True, slots=True)
class Listing(Generic[T]):
    items: list[T]
    total: int


def in_window(
    query: Select[Any],
    column: QueryableAttribute[datetime],
    start: datetime | None,
    end: datetime | None,
) -> Select[Any]:
    """`query` narrowed to rows whose `column` is in [start, end); a bound left None is open
    (OCPI's date_from and date_to)."""
    if start is not None:
        query = query.where(column >= start)
    if end is not None:
        query = query.where(column < end)
    return query


async def count_and_page(
    s: AsyncSession,
    query: Select[Any],
    order_by: tuple[ColumnElement[Any] | QueryableAttribute[Any], ...],
    offset: int,
    limit: int,
) -> tuple[int, list[Any]]:
    """How many rows `query` selects in all, and the page of them at `offset` in that order."""
    total = await s.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(await s.scalars(query.order_by(*order_by).offset(offset).limit(limit)))
    return int(total), rows
