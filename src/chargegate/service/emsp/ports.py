"""What the eMSP use cases need from a CPO's OCPI API, as protocols that `ocpi/emsp/` implements
(`registration.OcpiHandshake`, `sender.CommandSender`), and the values and errors they carry."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from chargegate.domain import commands as dc
from chargegate.domain.emsp_commands import CpoAnswer


class PeerApiError(Exception):
    """The peer's API could not be used; the message says which call failed and why."""


class BodyError(ValueError):
    """The command cannot be expressed in the peer's version; the message names the field."""


@dataclass(frozen=True, slots=True)
class Identity:
    role: str
    country_code: str
    party_id: str
    business_details: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class TheirCredentials:
    token: str
    url: str
    identities: list[Identity] = field(default_factory=list)

    def primary(self) -> Identity:
        """The CPO role if the peer has one, else a hub's, else the first it lists."""
        for wanted in ("CPO", "HUB"):
            for identity in self.identities:
                if identity.role == wanted:
                    return identity
        return self.identities[0]


@dataclass(frozen=True, slots=True)
class Registration:
    """What a completed credentials handshake learnt about the peer."""

    version: str
    plain_token: bool  # the peer wants its token unencoded, even in 2.2.1
    endpoints: dict[str, str]  # module identifier → URL of the peer's interface we call
    theirs: TheirCredentials


@dataclass(frozen=True, slots=True)
class Target:
    """Where and as whom a command goes."""

    version: str
    commands_url: str  # the peer's commands endpoint; the command name is appended
    token: str  # the peer's token C
    plain_token: bool
    from_party: tuple[str, str]
    to_party: tuple[str, str]


class CpoHandshake(Protocol):
    async def register(
        self, versions_url: str, token_a: str, token_b: str, *, version: str | None
    ) -> Registration:
        """Run the handshake as the initiating party, offering `token_b`; `version` pins the
        OCPI version (default: the newest both sides list). Raises PeerApiError."""
        ...

    async def endpoints(
        self, versions_url: str, token: str, version: str
    ) -> tuple[dict[str, str], bool]:
        """The peer's endpoints of `version` read with its (new) token, and whether it wants
        the token plain. Raises PeerApiError."""
        ...


class CpoCommandChannel(Protocol):
    def body(
        self,
        version: str,
        request: dc.CommandRequest,
        response_url: str,
        *,
        gireve: bool,
        owner: tuple[str, str],
        issuer: str,
        now: datetime,
    ) -> dict[str, Any]:
        """The command's body in the peer's version; raises BodyError if it cannot be sent."""
        ...

    async def send(
        self, target: Target, command: str, body: dict[str, Any], correlation_id: str
    ) -> CpoAnswer:
        """POST the command; never raises for the peer's failures (they are in the answer)."""
        ...
