"""Values a station sends that the JSON schema lets through but no handler can take: a
timestamp that is not a dateTime, an energy reading that is not a finite number of Wh in range.
Each becomes the CALLERROR OCPP-J names for it, raised before anything is stored (the library
sends an OCPPError a handler raises as its CALLERROR; anything else would be InternalError)."""

from __future__ import annotations

import math
from datetime import datetime

from ocpp.exceptions import PropertyConstraintViolationError, TypeConstraintViolationError

from chargegate.domain.clock import parse_datetime

# An energy register beyond this many Wh (2^31 - 1, about 2.1 GWh, what a 1.6 meterStart can
# hold) is no meter's reading.
MAX_WH = 2**31 - 1


def station_time(text: str, field: str = "timestamp") -> datetime:
    """The dateTime in `text` (OCPP's dateTime type: RFC 3339), or TypeConstraintViolation."""
    try:
        return parse_datetime(text)
    except (ValueError, TypeError, OverflowError, AttributeError):
        raise TypeConstraintViolationError(
            description=f"{field} is not an RFC 3339 dateTime"
        ) from None


def energy_wh(value: float, field: str = "meterValue") -> int:
    """A reading in Wh, or PropertyConstraintViolation for NaN, infinities and absurd sizes."""
    if not math.isfinite(value) or not 0 <= value <= MAX_WH:
        raise PropertyConstraintViolationError(
            description=f"{field}: {value!r} is not an energy reading of 0..{MAX_WH} Wh"
        )
    return int(value)
