"""UTC time and the OCPI DateTime format (never Python's default isoformat)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes come back from SQLite; they were written as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def ocpi_datetime(value: datetime) -> str:
    """`2026-11-23T08:00:00Z`, with milliseconds only when there are any (≤ 25 characters)."""
    value = as_utc(value)
    millis = value.microsecond // 1000
    # Not strftime("%Y"): it drops the zero padding of years before 1000 on glibc.
    base = (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        f"T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    )
    return f"{base}.{millis:03d}Z" if millis else f"{base}Z"


def parse_datetime(text: str) -> datetime:
    """Read an OCPI/OCPP DateTime; no designator means UTC (OCPI types, DateTime)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    return as_utc(value)
