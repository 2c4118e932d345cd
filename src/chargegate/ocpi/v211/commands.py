"""OCPI 2.1.1 command objects (mod_commands.md, release-2.1.1-bugfixes)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chargegate.domain import commands as dc
from chargegate.domain.commands import CommandReply, CommandResultType
from chargegate.domain.results import collapse_to_211
from chargegate.ocpi.fields import DateTime, Url

COMMANDS = ("RESERVE_NOW", "START_SESSION", "STOP_SESSION", "UNLOCK_CONNECTOR")


class Token(BaseModel):
    """2.1.1 Token. Fields the CPO does not use are optional here but type-checked if sent."""

    model_config = ConfigDict(extra="allow")
    uid: str = Field(min_length=1, max_length=36)
    type: Literal["OTHER", "RFID"]
    auth_id: str = Field(min_length=1, max_length=36)
    visual_number: str | None = Field(None, max_length=64)
    issuer: str | None = Field(None, max_length=64)
    valid: bool | None = None
    whitelist: Literal["ALWAYS", "ALLOWED", "ALLOWED_OFFLINE", "NEVER"] | None = None
    language: str | None = Field(None, max_length=2)
    last_updated: DateTime | None = None

    def to_domain(self) -> dc.Token:
        return dc.Token(
            uid=self.uid,
            type=self.type,
            contract_id=self.auth_id,
            issuer=self.issuer or "",
            raw=self.model_dump(mode="json", exclude_none=True),
        )


class _Command(BaseModel):
    model_config = ConfigDict(extra="allow")
    response_url: Url


class StartSession(_Command):
    token: Token
    location_id: str = Field(min_length=1, max_length=39)
    evse_uid: str | None = Field(None, min_length=1, max_length=39)
    # GIREVE IOP: top-level, stored and echoed in Sessions/CDRs; length unspecified by GIREVE,
    # so it gets the 2.2.1 authorization_reference's 36.
    authorization_id: str | None = Field(None, min_length=1, max_length=36)

    def to_domain(self) -> dc.StartSession:
        return dc.StartSession(
            location_id=self.location_id,
            token=self.token.to_domain(),
            evse_uid=self.evse_uid,
            authorization_reference=self.authorization_id,
        )


class StopSession(_Command):
    session_id: str = Field(min_length=1, max_length=36)

    def to_domain(self) -> dc.StopSession:
        return dc.StopSession(session_id=self.session_id)


class ReserveNow(_Command):
    token: Token
    expiry_date: DateTime
    reservation_id: int
    location_id: str = Field(min_length=1, max_length=39)
    evse_uid: str | None = Field(None, min_length=1, max_length=39)

    def to_domain(self) -> dc.ReserveNow:
        return dc.ReserveNow(
            location_id=self.location_id,
            token=self.token.to_domain(),
            expiry_date=self.expiry_date,
            reservation_id=str(self.reservation_id),
            evse_uid=self.evse_uid,
        )


class UnlockConnector(_Command):
    location_id: str = Field(min_length=1, max_length=39)
    evse_uid: str = Field(min_length=1, max_length=39)
    connector_id: str = Field(min_length=1, max_length=36)

    def to_domain(self) -> dc.UnlockConnector:
        return dc.UnlockConnector(
            location_id=self.location_id, evse_uid=self.evse_uid, connector_id=self.connector_id
        )


MODELS: dict[str, type[_Command]] = {
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
