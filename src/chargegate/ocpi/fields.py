"""Field types shared by both OCPI versions' request models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from chargegate.domain import commands as dc
from chargegate.domain.clock import parse_datetime


def _datetime(value: object) -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or len(value) > 25:
        raise ValueError("must be an OCPI DateTime string (UTC, at most 25 characters)")
    try:
        return parse_datetime(value)
    except ValueError as exc:
        raise ValueError(f"not a DateTime: {value!r}") from exc


def _url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an absolute http(s) URL")
    return value


DateTime = Annotated[datetime, BeforeValidator(_datetime)]
# OCPI `string`: printable, so no control characters (NUL included, which PostgreSQL refuses).
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
Url = Annotated[str, Field(max_length=255), AfterValidator(_url)]


def string(max_length: int) -> object:
    return Field(min_length=1, max_length=max_length)


class CommandBody(BaseModel):
    """What every command object has: where the result goes."""

    model_config = ConfigDict(extra="allow")
    response_url: Url


class TokenBody(BaseModel):
    """Token fields both versions share. The CPO does not use them, so they are optional here,
    but type-checked when sent; the token is echoed as received in Sessions."""

    model_config = ConfigDict(extra="allow")
    uid: str
    type: str
    visual_number: str | None = Field(None, max_length=64)
    issuer: str | None = Field(None, max_length=64)
    valid: bool | None = None
    whitelist: Literal["ALWAYS", "ALLOWED", "ALLOWED_OFFLINE", "NEVER"] | None = None
    language: str | None = Field(None, max_length=2)
    last_updated: DateTime | None = None

    def contract(self) -> str:
        """auth_id (2.1.1) or contract_id (2.2.1)."""
        raise NotImplementedError

    def to_domain(self) -> dc.Token:
        return dc.Token(
            uid=self.uid,
            type=self.type,
            contract_id=self.contract(),
            issuer=self.issuer or "",
            raw=self.model_dump(mode="json", exclude_none=True),
        )
