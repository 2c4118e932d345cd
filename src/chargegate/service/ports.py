"""What the service layer needs from the outside, as small protocols (the store, the peers'
wire, the delivery worker) and the plain values that cross them. `store/` implements the store
ports; the composition root wires them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from chargegate.domain.commands import CommandResultType

from .outbox import OutboxRow

# ---- the peers' wire and the delivery worker -------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionView:
    """What a Session or CDR object is rendered from: the session, its station with that
    station's connectors, and the peer it goes to (rows as the store reads them)."""

    session: Any
    station: Any
    connectors: list[Any]
    party: Any


class PeerWire(Protocol):
    """Renders what we send to a peer in the body form of the peer's OCPI version. Sessions,
    stations, connectors and parties are rows as the store reads them."""

    def command_result(
        self, version: str, result: CommandResultType, message: str | None
    ) -> dict[str, Any]: ...

    def session(self, version: str, view: SessionView) -> dict[str, Any]: ...

    def cdr(self, version: str, view: SessionView) -> dict[str, Any]: ...

    def session_push_url(self, party: Any, session: Any) -> str | None:
        """Where the peer receives this session (PUT), or None if it lists no receiver."""
        ...


class PartyRow(Protocol):
    """A peer as the service reads it (delivery needs its token and version; a caller is
    known by the hash of its token A or C) and as the OCPI routes and the admin CLI show it
    (who it is, its profile, its handshake's state)."""

    @property
    def id(self) -> int: ...

    @property
    def role(self) -> str: ...

    @property
    def country_code(self) -> str: ...

    @property
    def party_id(self) -> str: ...

    @property
    def name(self) -> str | None: ...

    @property
    def profile(self) -> str | None: ...

    @property
    def state(self) -> str: ...

    @property
    def ocpi_version(self) -> str | None: ...

    @property
    def versions_url(self) -> str | None: ...

    @property
    def endpoints(self) -> dict[str, str] | None: ...

    @property
    def token_a_hash(self) -> str | None: ...

    @property
    def token_c_hash(self) -> str | None: ...


class DeliverNow(Protocol):
    async def __call__(self, row: OutboxRow, party: Any) -> None:
        """Send a row this node leased at creation, and record the peer's answer."""


class OutboxSignal(Protocol):
    def __call__(self) -> None:
        """Wake the delivery worker: a new outbox row was committed."""


# ---- commands: what the store reads and writes for them --------------------------------------


class StationView(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def location_id(self) -> str | None: ...

    @property
    def ocpp_version(self) -> str: ...

    @property
    def locked(self) -> bool: ...

    @property
    def published(self) -> bool: ...

    @property
    def site(self) -> dict[str, Any] | None: ...


class ConnectorView(Protocol):
    @property
    def connector_id(self) -> int: ...

    @property
    def locked(self) -> bool: ...

    @property
    def spec(self) -> dict[str, Any] | None: ...


@dataclass(frozen=True, slots=True)
class Target:
    """What a location id (and EVSE uid) names: None where nothing matched."""

    station: Any | None  # StationView
    connector: Any | None  # ConnectorView


@dataclass(frozen=True, slots=True)
class SessionToStop:
    """A session a STOP_SESSION names, with the station it runs on."""

    party_id: int | None
    status: str
    transaction_id: str | None
    connector_id: int
    station: Any  # StationView


@dataclass(frozen=True, slots=True)
class ReservationToCancel:
    """A live reservation a CANCEL_RESERVATION names, with the station that holds it."""

    connector_id: int
    ocpp_reservation_id: int
    station: Any  # StationView


@dataclass(frozen=True, slots=True)
class Reserving:
    """The reservation a RESERVE_NOW asks for; the same (party, location, reservation_id)
    replaces an earlier one, which keeps its OCPP reservation id. Its command (and the
    command's response_url) is the one recorded with it."""

    party_id: int
    station_id: str
    reservation_id: str
    connector_id: int
    expiry_date: datetime


@dataclass(frozen=True, slots=True)
class ReservationFollows:
    """What a reservation command's outcome does to its reservation: RESERVE_NOW's own
    (`by_command`) or the one CANCEL_RESERVATION names. `status`: its new status, None for
    unchanged; `opens_session`: a 2.2.1 reservation gets a Session (status RESERVATION)."""

    by_command: bool
    status: str | None
    opens_session: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """A command's move from `pending` to its outcome; applied only if it is still pending."""

    command_id: str
    pending: str
    state: str
    result: str
    message: str | None
    station_status: str | None
    now: datetime


@dataclass(frozen=True, slots=True)
class ResultRow:
    """A command result's outbox row before its command is read: `values` has every column
    but those that come from the command (peer, version, url, correlation id, command id,
    body), and `render(version)` gives the body in that OCPI version."""

    render: Callable[[str], dict[str, Any]]
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Recorded:
    """An outcome recorded with its result's outbox row; `queued_more` when the same
    transaction queued other rows too (a reservation's Session)."""

    row: OutboxRow
    party_id: int
    queued_more: bool


class CommandStore(Protocol):
    """Commands, their targets and their outcomes, each call one transaction."""

    async def find_target(
        self, location_id: str, evse_uid: str | None, case_insensitive: bool
    ) -> Target: ...

    async def session_to_stop(
        self, session_id: str, case_insensitive: bool
    ) -> SessionToStop | None:
        """The session by id, or None."""

    async def reservation_to_cancel(
        self, party_id: int, reservation_id: str, case_insensitive: bool
    ) -> ReservationToCancel | None:
        """The party's REQUESTED or ACTIVE reservation by id, or None."""

    async def record(self, command: dict[str, Any]) -> None:
        """Store a new pending command."""

    async def record_reserving(self, command: dict[str, Any], reserving: Reserving) -> int:
        """Store a new pending RESERVE_NOW with its reservation (REQUESTED); returns the OCPP
        reservation id the station is to be given."""

    async def record_outcome(
        self, decision: Decision, result: ResultRow, reservation: ReservationFollows | None
    ) -> Recorded | None:
        """The command's one outcome, what it does to a reservation, and the outbox row that
        reports it, in one transaction; None if the command was no longer pending."""

    async def expired(self, now: datetime) -> list[tuple[str, str]]:
        """(id, type) of pending commands past their deadline."""

    async def evse_status(self, station_id: str, connector_id: int) -> str | None:
        """The OCPI status of a connector's EVSE, None if the connector is not known."""


# The party by id (a PartyRow), or None.
PartyLoader = Callable[[int], Awaitable[Any | None]]
