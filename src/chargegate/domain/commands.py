"""OCPI commands as the domain sees them, independent of the OCPI version they arrived in."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class CommandType(enum.StrEnum):
    START_SESSION = "START_SESSION"
    STOP_SESSION = "STOP_SESSION"
    RESERVE_NOW = "RESERVE_NOW"
    CANCEL_RESERVATION = "CANCEL_RESERVATION"
    UNLOCK_CONNECTOR = "UNLOCK_CONNECTOR"


class CommandResponseType(enum.StrEnum):
    """The synchronous answer (2.2.1 values; 2.1.1 uses the same names for these four)."""

    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    UNKNOWN_SESSION = "UNKNOWN_SESSION"


class CommandResultType(enum.StrEnum):
    """The asynchronous outcome, in the 2.2.1 vocabulary; 2.1.1 collapses it (see results.py)."""

    ACCEPTED = "ACCEPTED"
    CANCELED_RESERVATION = "CANCELED_RESERVATION"
    EVSE_OCCUPIED = "EVSE_OCCUPIED"
    EVSE_INOPERATIVE = "EVSE_INOPERATIVE"
    FAILED = "FAILED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    TIMEOUT = "TIMEOUT"
    UNKNOWN_RESERVATION = "UNKNOWN_RESERVATION"


class CommandState(enum.StrEnum):
    PENDING = "PENDING"  # accepted, waiting for the station
    RESOLVED = "RESOLVED"  # outcome decided and queued for delivery


@dataclass(frozen=True, slots=True)
class Token:
    """The eMSP's token as carried in StartSession/ReserveNow; `raw` is echoed in Sessions."""

    uid: str
    type: str
    contract_id: str
    issuer: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StartSession:
    location_id: str
    token: Token
    evse_uid: str | None = None
    connector_id: str | None = None
    authorization_reference: str | None = None


@dataclass(frozen=True, slots=True)
class StopSession:
    session_id: str


@dataclass(frozen=True, slots=True)
class ReserveNow:
    location_id: str
    token: Token
    expiry_date: datetime
    reservation_id: str
    evse_uid: str | None = None
    authorization_reference: str | None = None


@dataclass(frozen=True, slots=True)
class CancelReservation:
    reservation_id: str


@dataclass(frozen=True, slots=True)
class UnlockConnector:
    location_id: str
    evse_uid: str
    connector_id: str


CommandRequest = StartSession | StopSession | ReserveNow | CancelReservation | UnlockConnector

COMMAND_OF_REQUEST: dict[type, CommandType] = {
    StartSession: CommandType.START_SESSION,
    StopSession: CommandType.STOP_SESSION,
    ReserveNow: CommandType.RESERVE_NOW,
    CancelReservation: CommandType.CANCEL_RESERVATION,
    UnlockConnector: CommandType.UNLOCK_CONNECTOR,
}


@dataclass(frozen=True, slots=True)
class CommandReply:
    """What the CPO answers at once. `ocpi_status` is 1000 unless the spec names another code."""

    result: CommandResponseType
    message: str | None = None
    ocpi_status: int = 1000
    command_id: str | None = None


@dataclass(frozen=True, slots=True)
class Peer:
    """The party a command came from, as much as the command service needs to know."""

    id: int
    country_code: str
    party_id: str
    ocpi_version: str
    profile: str | None = None
