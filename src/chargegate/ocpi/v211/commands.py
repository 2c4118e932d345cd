"""OCPI 2.1.1 command objects (mod_commands.md, release-2.1.1-bugfixes)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from chargegate.domain import commands as dc
from chargegate.domain.commands import CommandReply, CommandResultType
from chargegate.domain.results import collapse_to_211
from chargegate.ocpi.fields import PRINTABLE, CommandBody, DateTime, TokenBody

COMMANDS = ("RESERVE_NOW", "START_SESSION", "STOP_SESSION", "UNLOCK_CONNECTOR")


class Token(TokenBody):
    uid: str = Field(min_length=1, max_length=36, pattern=PRINTABLE)
    type: Literal["OTHER", "RFID"]
    auth_id: str = Field(min_length=1, max_length=36, pattern=PRINTABLE)

    def contract(self) -> str:
        return self.auth_id


class StartSession(CommandBody):
    token: Token
    location_id: str = Field(min_length=1, max_length=39, pattern=PRINTABLE)
    evse_uid: str | None = Field(None, min_length=1, max_length=39, pattern=PRINTABLE)
    # GIREVE IOP: top-level, stored and echoed in Sessions/CDRs; length unspecified by GIREVE,
    # so it gets the 2.2.1 authorization_reference's 36.
    authorization_id: str | None = Field(None, min_length=1, max_length=36, pattern=PRINTABLE)

    def to_domain(self) -> dc.StartSession:
        return dc.StartSession(
            location_id=self.location_id,
            token=self.token.to_domain(),
            evse_uid=self.evse_uid,
            authorization_reference=self.authorization_id,
        )


class StopSession(CommandBody):
    session_id: str = Field(min_length=1, max_length=36, pattern=PRINTABLE)

    def to_domain(self) -> dc.StopSession:
        return dc.StopSession(session_id=self.session_id)


class ReserveNow(CommandBody):
    token: Token
    expiry_date: DateTime
    # Stored as text beside 2.2.1's CiString(36): at most 36 digits.
    reservation_id: int = Field(ge=0, le=10**36 - 1)
    location_id: str = Field(min_length=1, max_length=39, pattern=PRINTABLE)
    evse_uid: str | None = Field(None, min_length=1, max_length=39, pattern=PRINTABLE)

    def to_domain(self) -> dc.ReserveNow:
        return dc.ReserveNow(
            location_id=self.location_id,
            token=self.token.to_domain(),
            expiry_date=self.expiry_date,
            reservation_id=str(self.reservation_id),
            evse_uid=self.evse_uid,
        )


class UnlockConnector(CommandBody):
    location_id: str = Field(min_length=1, max_length=39, pattern=PRINTABLE)
    evse_uid: str = Field(min_length=1, max_length=39, pattern=PRINTABLE)
    connector_id: str = Field(min_length=1, max_length=36, pattern=PRINTABLE)

    def to_domain(self) -> dc.UnlockConnector:
        return dc.UnlockConnector(
            location_id=self.location_id, evse_uid=self.evse_uid, connector_id=self.connector_id
        )


MODELS: dict[str, type[CommandBody]] = {
    "START_SESSION": StartSession,
    "STOP_SESSION": StopSession,
    "RESERVE_NOW": ReserveNow,
    "UNLOCK_CONNECTOR": UnlockConnector,
}


def response_data(reply: CommandReply, timeout: int) -> dict[str, Any]:
    """2.1.1 CommandResponse has only `result` (no timeout, no message)."""
    return {"result": reply.result.value}


def result_body(result: CommandResultType, message: str | None) -> dict[str, Any]:
    """What we POST to response_url: a CommandResponse with the collapsed 2.1.1 enum."""
    return {"result": collapse_to_211(result)}
