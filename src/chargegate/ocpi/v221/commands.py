"""OCPI 2.2.1 command objects (mod_commands.asciidoc, release-2.2.1-bugfixes)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from chargegate.domain import commands as dc
from chargegate.domain.commands import CommandReply, CommandResultType
from chargegate.ocpi.fields import CommandBody, DateTime, TokenBody

COMMANDS = (
    "CANCEL_RESERVATION",
    "RESERVE_NOW",
    "START_SESSION",
    "STOP_SESSION",
    "UNLOCK_CONNECTOR",
)

CiString36 = Field(min_length=1, max_length=36, pattern=r"^[\x20-\x7e]+$")


class Token(TokenBody):
    country_code: str | None = Field(None, min_length=2, max_length=2)
    party_id: str | None = Field(None, min_length=3, max_length=3)
    uid: str = CiString36
    type: Literal["AD_HOC_USER", "APP_USER", "OTHER", "RFID"]
    contract_id: str = CiString36
    group_id: str | None = Field(None, max_length=36)

    def contract(self) -> str:
        return self.contract_id


class StartSession(CommandBody):
    token: Token
    location_id: str = CiString36
    evse_uid: str | None = Field(None, min_length=1, max_length=36)
    connector_id: str | None = Field(None, min_length=1, max_length=36)
    authorization_reference: str | None = Field(None, min_length=1, max_length=36)

    @model_validator(mode="after")
    def _connector_needs_evse(self) -> StartSession:
        if self.connector_id is not None and self.evse_uid is None:
            raise ValueError("evse_uid is required when connector_id is set")
        return self

    def to_domain(self) -> dc.StartSession:
        return dc.StartSession(
            location_id=self.location_id,
            token=self.token.to_domain(),
            evse_uid=self.evse_uid,
            connector_id=self.connector_id,
            authorization_reference=self.authorization_reference,
        )


class StopSession(CommandBody):
    session_id: str = CiString36

    def to_domain(self) -> dc.StopSession:
        return dc.StopSession(session_id=self.session_id)


class ReserveNow(CommandBody):
    token: Token
    expiry_date: DateTime
    reservation_id: str = CiString36
    location_id: str = CiString36
    evse_uid: str | None = Field(None, min_length=1, max_length=36)
    authorization_reference: str | None = Field(None, min_length=1, max_length=36)

    def to_domain(self) -> dc.ReserveNow:
        return dc.ReserveNow(
            location_id=self.location_id,
            token=self.token.to_domain(),
            expiry_date=self.expiry_date,
            reservation_id=self.reservation_id,
            evse_uid=self.evse_uid,
            authorization_reference=self.authorization_reference,
        )


class CancelReservation(CommandBody):
    reservation_id: str = CiString36

    def to_domain(self) -> dc.CancelReservation:
        return dc.CancelReservation(reservation_id=self.reservation_id)


class UnlockConnector(CommandBody):
    location_id: str = CiString36
    evse_uid: str = CiString36
    connector_id: str = CiString36

    def to_domain(self) -> dc.UnlockConnector:
        return dc.UnlockConnector(
            location_id=self.location_id, evse_uid=self.evse_uid, connector_id=self.connector_id
        )


MODELS: dict[str, type[CommandBody]] = {
    "CANCEL_RESERVATION": CancelReservation,
    "START_SESSION": StartSession,
    "STOP_SESSION": StopSession,
    "RESERVE_NOW": ReserveNow,
    "UNLOCK_CONNECTOR": UnlockConnector,
}


def _display_text(message: str | None) -> list[dict[str, str]]:
    return [{"language": "en", "text": message[:512]}] if message else []


def response_data(reply: CommandReply, timeout: int) -> dict[str, Any]:
    """2.2.1 CommandResponse: `timeout` is required; `message` is a DisplayText list."""
    data: dict[str, Any] = {"result": reply.result.value, "timeout": timeout}
    if reply.message:
        data["message"] = _display_text(reply.message)
    return data


def result_body(result: CommandResultType, message: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"result": result.value}
    if message:
        body["message"] = _display_text(message)
    return body
