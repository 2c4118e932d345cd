"""What the service layer needs from the outside, as small protocols wired in app.py."""

from __future__ import annotations

from typing import Any, Protocol

from chargegate.domain.commands import CommandResultType
from chargegate.store.models import ChargingSession, Connector, Party, Station

from .outbox import OutboxRow


class PeerWire(Protocol):
    """Renders what we send to a peer in the body form of the peer's OCPI version."""

    def command_result(
        self, version: str, result: CommandResultType, message: str | None
    ) -> dict[str, Any]: ...

    def session(
        self,
        version: str,
        session: ChargingSession,
        station: Station,
        connectors: list[Connector],
        party: Party | None,
    ) -> dict[str, Any]: ...

    def cdr(
        self,
        version: str,
        session: ChargingSession,
        station: Station,
        connectors: list[Connector],
        party: Party | None,
    ) -> dict[str, Any]: ...

    def session_push_url(self, party: Party, session: ChargingSession) -> str | None:
        """Where the peer receives this session (PUT), or None if it lists no receiver."""
        ...


class DeliverNow(Protocol):
    async def __call__(self, row: OutboxRow, party: Party) -> None:
        """Send a row this node leased at creation, and record the peer's answer."""


class OutboxSignal(Protocol):
    def __call__(self) -> None:
        """Wake the delivery worker: a new outbox row was committed."""
