"""Requests the CSMS makes of a station and the station's answers, free of any OCPP version.

Each OCPP handler translates these to its own messages (ocpp/v16_translation.py) so the service
and the router never see an OCPP dataclass.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class RemoteStart:
    connector_id: int | None
    id_token: str
    token_type: str = "OTHER"
    remote_start_id: int | None = None


@dataclass(frozen=True, slots=True)
class RemoteStop:
    transaction_id: str


@dataclass(frozen=True, slots=True)
class Reserve:
    connector_id: int
    expiry_date: datetime
    id_token: str
    reservation_id: int
    token_type: str = "OTHER"


@dataclass(frozen=True, slots=True)
class CancelReservation:
    reservation_id: int


@dataclass(frozen=True, slots=True)
class Unlock:
    connector_id: int


@dataclass(frozen=True, slots=True)
class GetConfiguration:
    keys: tuple[str, ...] = ()  # empty: every key the station has


@dataclass(frozen=True, slots=True)
class ChangeConfiguration:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Reset:
    type: str  # Hard | Soft


@dataclass(frozen=True, slots=True)
class ClearCache:
    pass


StationRequest = (
    RemoteStart
    | RemoteStop
    | Reserve
    | CancelReservation
    | Unlock
    | GetConfiguration
    | ChangeConfiguration
    | Reset
    | ClearCache
)


class Outcome(enum.StrEnum):
    """What a station's answer means, whatever words its OCPP version used."""

    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    OCCUPIED = "OCCUPIED"
    FAULTED = "FAULTED"
    UNAVAILABLE = "UNAVAILABLE"
    UNLOCK_FAILED = "UNLOCK_FAILED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    ONGOING_TRANSACTION = "ONGOING_TRANSACTION"
    UNKNOWN_CONNECTOR = "UNKNOWN_CONNECTOR"
    REBOOT_REQUIRED = "REBOOT_REQUIRED"
    SCHEDULED = "SCHEDULED"
    CALL_ERROR = "CALL_ERROR"  # a CALLERROR; `error_code` says which
    TIMEOUT = "TIMEOUT"  # no answer before the deadline
    CONNECTION_LOST = "CONNECTION_LOST"  # the socket closed while the call was in flight
    OFFLINE = "OFFLINE"  # the station was not connected when the call was to be made


@dataclass(frozen=True, slots=True)
class StationReply:
    outcome: Outcome
    status: str | None = None  # the station's own status word, for logs and operators
    error_code: str | None = None
    description: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    unique_id: str | None = None  # the OCPP message id, to find the exchange in the log
