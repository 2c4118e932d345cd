"""eMSP command API: ask a connected CPO to start, stop, reserve, cancel or unlock, then follow
the command (poll here, stream in emsp_stream.py, or a webhook).

Bodies use OCPI's field names in one form for both OCPI versions; chargegate writes the 2.1.1 or
2.2.1 object the peer speaks. Keys: `driver` (on an EV driver's behalf: no UNLOCK_CONNECTOR, sees
its own commands), `operator` (the eMSP's help desk: every command, sees all), `read` (looks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chargegate import json_text
from chargegate.domain import commands as dc
from chargegate.domain import emsp_commands as ec
from chargegate.domain.clock import ocpi_datetime
from chargegate.domain.commands import CommandType
from chargegate.domain.emsp_commands import EmspRequestError
from chargegate.gateway import gateway_of
from chargegate.ocpi.fields import DateTime
from chargegate.service.emsp.commands import Requester
from chargegate.service.emsp.peers import peer_name
from chargegate.service.operator_keys import OperatorKeyRow
from chargegate.store.listing import MAX_OFFSET

from .auth import AnyKey

router = APIRouter(prefix="/emsp", tags=["eMSP commands"])

STATUS_OF_KIND = {
    "invalid": 400,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "mismatch": 422,
}

Id36 = Annotated[str, Field(min_length=1, max_length=36)]
Id39 = Annotated[str, Field(min_length=1, max_length=39)]


async def emsp_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EmspRequestError)
    return JSONResponse(
        {"error": exc.kind, "message": exc.message}, status_code=STATUS_OF_KIND.get(exc.kind, 400)
    )


def requester(key: OperatorKeyRow) -> Requester:
    return Requester(key.id, frozenset(key.scopes.split()))


# ---- request bodies --------------------------------------------------------------------------


class TokenIn(BaseModel):
    """The token the command is for, authorised by the eMSP beforehand (OCPI: the CPO does not
    check it). Written as a 2.1.1 or 2.2.1 Token object for the peer."""

    model_config = ConfigDict(extra="forbid")
    uid: Id36
    type: Literal["AD_HOC_USER", "APP_USER", "OTHER", "RFID"] = Field(
        "APP_USER", description="2.1.1 knows OTHER and RFID only; the others are sent as OTHER"
    )
    contract_id: Id36 | None = Field(
        None, description="2.2.1 contract_id = 2.1.1 auth_id; default: uid"
    )
    auth_id: Id36 | None = Field(None, description="the 2.1.1 name of contract_id")
    issuer: str | None = Field(None, max_length=64, description="default: our business name")
    visual_number: str | None = Field(None, max_length=64)
    group_id: Id36 | None = Field(None, description="2.2.1 only")
    valid: bool = True
    whitelist: Literal["ALWAYS", "ALLOWED", "ALLOWED_OFFLINE", "NEVER"] = "ALLOWED"
    language: str | None = Field(None, min_length=2, max_length=2)
    last_updated: DateTime | None = Field(None, description="default: now")
    country_code: str | None = Field(None, min_length=2, max_length=2, description="default: ours")
    party_id: str | None = Field(None, min_length=3, max_length=3, description="default: ours")
    default_profile_type: str | None = None
    energy_contract: dict[str, Any] | None = None

    def to_domain(self) -> dc.Token:
        raw = self.model_dump(mode="json", exclude_none=True)
        if self.last_updated is not None:
            raw["last_updated"] = ocpi_datetime(self.last_updated)
        return dc.Token(
            uid=self.uid,
            type=self.type,
            contract_id=self.contract_id or self.auth_id or self.uid,
            issuer=self.issuer or "",
            raw=raw,
        )


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to_party: str | None = Field(
        None,
        description="the CPO behind a hub, `FR-ABC` (2.2.1 OCPI-to headers); default: the peer",
    )


class StartSessionIn(_Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "location_id": "12345",
                    "evse_uid": "54321",
                    "token": {"uid": "11111", "type": "OTHER", "auth_id": "22222"},
                }
            ]
        }
    )
    location_id: Id39
    evse_uid: Id39 | None = None
    connector_id: Id36 | None = Field(None, description="2.2.1 only")
    token: TokenIn
    authorization_reference: Id36 | None = Field(
        None, description="default: a new one, which Sessions and CDRs come back with"
    )

    def to_domain(self) -> dc.StartSession:
        return dc.StartSession(
            location_id=self.location_id,
            token=self.token.to_domain(),
            evse_uid=self.evse_uid,
            connector_id=self.connector_id,
            authorization_reference=self.authorization_reference,
        )


class StopSessionIn(_Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"session_id": "a1b2c3"}]})
    session_id: Id36

    def to_domain(self) -> dc.StopSession:
        return dc.StopSession(session_id=self.session_id)


class ReserveNowIn(_Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "location_id": "LOC-1",
                    "evse_uid": "LOC-1-1",
                    "reservation_id": "1001",
                    "expiry_date": "2030-01-01T12:00:00Z",
                    "token": {"uid": "04A1B2C3", "type": "RFID", "contract_id": "NL-EMS-C1"},
                }
            ]
        }
    )
    location_id: Id39
    evse_uid: Id39 | None = None
    token: TokenIn
    expiry_date: DateTime
    reservation_id: Id36 = Field(
        description="yours; 2.1.1 wants digits. CANCEL_RESERVATION names it"
    )
    authorization_reference: Id36 | None = None

    @field_validator("reservation_id", mode="before")
    @classmethod
    def _as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value

    def to_domain(self) -> dc.ReserveNow:
        return dc.ReserveNow(
            location_id=self.location_id,
            token=self.token.to_domain(),
            expiry_date=self.expiry_date,
            reservation_id=self.reservation_id,
            evse_uid=self.evse_uid,
            authorization_reference=self.authorization_reference,
        )


class CancelReservationIn(_Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reservation_id": "1001"}]})
    reservation_id: Id36

    @field_validator("reservation_id", mode="before")
    @classmethod
    def _as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value

    def to_domain(self) -> dc.CancelReservation:
        return dc.CancelReservation(reservation_id=self.reservation_id)


class UnlockConnectorIn(_Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"location_id": "LOC-1", "evse_uid": "LOC-1-1", "connector_id": "1"}]
        }
    )
    location_id: Id39
    evse_uid: Id39
    connector_id: Id36

    def to_domain(self) -> dc.UnlockConnector:
        return dc.UnlockConnector(
            location_id=self.location_id, evse_uid=self.evse_uid, connector_id=self.connector_id
        )


BODIES: dict[CommandType, type[_Body]] = {
    CommandType.START_SESSION: StartSessionIn,
    CommandType.STOP_SESSION: StopSessionIn,
    CommandType.RESERVE_NOW: ReserveNowIn,
    CommandType.CANCEL_RESERVATION: CancelReservationIn,
    CommandType.UNLOCK_CONNECTOR: UnlockConnectorIn,
}


def _openapi_bodies() -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            m.model_json_schema(ref_template="#/components/schemas/{model}")
                            for m in BODIES.values()
                        ]
                    },
                    "examples": {
                        name.value: {"value": m.model_config["json_schema_extra"]["examples"][0]}  # type: ignore[index]
                        for name, m in BODIES.items()
                    },
                }
            },
        }
    }


def _message(exc: ValidationError) -> str:
    parts = [
        f"{'.'.join(str(p) for p in e.get('loc', ())) or 'body'}: {e.get('msg')}"
        for e in exc.errors()[:5]
    ]
    return "; ".join(parts)


# ---- endpoints -------------------------------------------------------------------------------


@router.post(
    "/peers/{peer}/commands/{command}",
    summary="Send a command to a connected CPO",
    description=(
        "Sends the OCPI command with a response_url of ours and answers once the CPO has "
        "answered: `state` RESPONDED (with the CPO's result and timeout), or FAILED when the CPO "
        "could not be reached. 201 for a new command; 200 with `Idempotent-Replayed: true` for a "
        "repeat of an `Idempotency-Key` this key used before (no second OCPI command is sent)."
    ),
    status_code=201,
    responses={
        200: {"description": "an earlier command with the same Idempotency-Key"},
        400: {"description": "invalid parameters, or not possible with this peer"},
        403: {"description": "the key's scopes do not allow this command"},
        404: {"description": "unknown peer"},
        409: {"description": "the peer is not connected"},
        422: {"description": "the Idempotency-Key was used for a different request"},
    },
    openapi_extra=_openapi_bodies(),
)
async def post_command(
    peer: str,
    command: str,
    request: Request,
    key: AnyKey,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> JSONResponse:
    try:
        command_type = CommandType(command.upper())
    except ValueError:
        raise EmspRequestError(
            "not_found",
            f"unknown command {command!r}; commands are {', '.join(c.value for c in CommandType)}",
        ) from None
    who = requester(key)
    ec.check_allowed(command_type, who.scopes)
    try:
        raw = json_text.loads_document(await request.body() or b"{}")
        body = BODIES[command_type].model_validate(raw)
    except ValueError as exc:
        message = _message(exc) if isinstance(exc, ValidationError) else f"not JSON: {exc}"
        raise EmspRequestError("invalid", message) from exc
    params = body.model_dump(mode="json", exclude_none=True, exclude={"to_party"})
    view, created = await gateway_of(request).emsp.commands.submit(
        who,
        peer,
        body.to_domain(),  # type: ignore[attr-defined]
        params,
        idempotency_key=idempotency_key,
        to_party=body.to_party,
    )
    headers = {"Location": f"/emsp/commands/{view['id']}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(view, status_code=201 if created else 200, headers=headers)


@router.get("/commands/{command_id}", summary="A command and where it stands")
async def get_command(command_id: str, request: Request, key: AnyKey) -> dict[str, Any]:
    view: dict[str, Any] = await gateway_of(request).emsp.commands.get(requester(key), command_id)
    return view


@router.get("/commands", summary="Commands, newest first (a driver key sees its own)")
async def list_commands(
    request: Request,
    key: AnyKey,
    peer: str | None = None,
    state: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[dict[str, Any]]:
    views: list[dict[str, Any]] = await gateway_of(request).emsp.commands.list(
        requester(key), peer=peer, state=state, limit=limit, offset=offset
    )
    return views


@router.get("/peers", summary="CPOs and hubs we connected to (`chargegate peer connect`)")
async def list_peers(request: Request, key: AnyKey) -> list[dict[str, Any]]:
    return [
        {
            "peer": peer_name(p),
            "state": p.state,
            "role": p.role,
            "ocpi_version": p.ocpi_version,
            "profile": p.profile,
            "name": p.name or (p.business_details or {}).get("name"),
            "modules": sorted(p.endpoints or {}),
            "connected_at": ocpi_datetime(p.connected_at) if p.connected_at else None,
        }
        for p in await gateway_of(request).emsp.peers.all()
    ]


@dataclass(frozen=True)
class ReceiptFilter:
    """Which pushed Sessions or posted CDRs a list shows: those the key may see, of one command
    if given, newest first up to `limit`."""

    api_key_id: int | None
    command_id: str | None
    limit: int


def _receipt_filter(
    key: AnyKey,
    command_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ReceiptFilter:
    owner = None if ec.sees_all(requester(key).scopes) else key.id
    return ReceiptFilter(owner, command_id, limit)


Receipts = Annotated[ReceiptFilter, Depends(_receipt_filter)]


@router.get("/sessions", summary="Sessions the CPOs pushed, newest first")
async def list_sessions(request: Request, which: Receipts) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await gateway_of(request).emsp.receipts.sessions_of(
        api_key_id=which.api_key_id, command_id=which.command_id, limit=which.limit
    )
    return rows


@router.get("/cdrs", summary="CDRs the CPOs posted, newest first")
async def list_cdrs(request: Request, which: Receipts) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await gateway_of(request).emsp.receipts.cdrs_of(
        api_key_id=which.api_key_id, command_id=which.command_id, limit=which.limit
    )
    return rows
