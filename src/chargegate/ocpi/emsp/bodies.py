"""Command bodies as we send them, in the peer's OCPI version (mod_commands §3 / "Object
description"; GIREVE IOP's `authorization_id` for 2.1.1).

The API takes one version-free form; this is where it becomes a 2.1.1 or a 2.2.1 object. Each
body is then read back with the models our own CPO side parses commands with, so what we send
is held to the same field rules (lengths, required fields) as what we accept."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from chargegate.domain import commands as dc
from chargegate.domain.clock import ocpi_datetime
from chargegate.service.emsp.ports import BodyError, SenderIdentity

from ..envelope import validation_message
from ..v211 import commands as v211
from ..v221 import commands as v221

# 2.1.1 knows OTHER and RFID only; app and ad-hoc tokens are OTHER there.
_TOKEN_TYPES_211 = ("OTHER", "RFID")


def token_object(
    version: str, token: dc.Token, *, sender: SenderIdentity, now: datetime
) -> dict[str, Any]:
    raw = token.raw
    last_updated = raw.get("last_updated") or ocpi_datetime(now)
    if version == "2.1.1":
        # Field order as in GIREVE's published StartSession example (docs/decisions.md#gireve-iop).
        body: dict[str, Any] = {
            "uid": token.uid,
            "type": token.type if token.type in _TOKEN_TYPES_211 else "OTHER",
            "auth_id": token.contract_id,
        }
        _copy(raw, body, "visual_number")
        body["issuer"] = token.issuer or sender.issuer
        body["valid"] = raw.get("valid", True)
        _copy(raw, body, "language")
        body["last_updated"] = last_updated
        body["whitelist"] = raw.get("whitelist", "ALLOWED")
        return body
    body = {
        "country_code": (raw.get("country_code") or sender.owner[0]).upper(),
        "party_id": (raw.get("party_id") or sender.owner[1]).upper(),
        "uid": token.uid,
        "type": token.type,
        "contract_id": token.contract_id,
    }
    _copy(raw, body, "visual_number")
    body["issuer"] = token.issuer or sender.issuer
    _copy(raw, body, "group_id")
    body["valid"] = raw.get("valid", True)
    body["whitelist"] = raw.get("whitelist", "ALLOWED")
    for key in ("language", "default_profile_type", "energy_contract"):
        _copy(raw, body, key)
    body["last_updated"] = last_updated
    return body


def command_body(
    version: str,
    request: dc.CommandRequest,
    response_url: str,
    *,
    gireve: bool,
    sender: SenderIdentity,
    now: datetime,
) -> dict[str, Any]:
    """The body to POST to `{commands endpoint}/{command}`; BodyError if it cannot be sent."""
    body: dict[str, Any] = {"response_url": response_url}
    reference_field = "authorization_reference" if version == "2.2.1" else None
    if version == "2.1.1" and gireve:
        reference_field = "authorization_id"
    if isinstance(request, dc.StartSession):
        body["token"] = token_object(version, request.token, sender=sender, now=now)
        if reference_field and request.authorization_reference:
            body[reference_field] = request.authorization_reference
        body["location_id"] = request.location_id
        _put(body, "evse_uid", request.evse_uid)
        if request.connector_id is not None:
            if version == "2.1.1":
                raise BodyError("connector_id: OCPI 2.1.1 StartSession has no connector_id")
            body["connector_id"] = request.connector_id
    elif isinstance(request, dc.StopSession):
        body["session_id"] = request.session_id
    elif isinstance(request, dc.ReserveNow):
        body["token"] = token_object(version, request.token, sender=sender, now=now)
        body["expiry_date"] = ocpi_datetime(request.expiry_date)
        body["reservation_id"] = _reservation_id(version, request.reservation_id)
        body["location_id"] = request.location_id
        _put(body, "evse_uid", request.evse_uid)
        if version == "2.2.1" and request.authorization_reference:
            body["authorization_reference"] = request.authorization_reference
    elif isinstance(request, dc.CancelReservation):
        body["reservation_id"] = request.reservation_id
    else:
        body["location_id"] = request.location_id
        body["evse_uid"] = request.evse_uid
        body["connector_id"] = request.connector_id
    _check(version, dc.COMMAND_OF_REQUEST[type(request)].value, body)
    return body


def _reservation_id(version: str, value: str) -> int | str:
    if version != "2.1.1":
        return value
    # ASCII digits only: "¹".isdigit() too; the 2.1.1 model bounds the number (36 digits).
    if not (value.isascii() and value.isdigit()) or len(value) > 36:
        raise BodyError(f"reservation_id: OCPI 2.1.1 wants an integer, got {value!r}")
    return int(value)


def _check(version: str, command: str, body: dict[str, Any]) -> None:
    model = (v211 if version == "2.1.1" else v221).MODELS[command]
    try:
        model.model_validate(body)
    except ValidationError as exc:
        raise BodyError(
            validation_message(exc).replace("Invalid or missing parameters", f"OCPI {version}")
        ) from exc


def _copy(source: dict[str, Any], target: dict[str, Any], key: str) -> None:
    if source.get(key) is not None:
        target[key] = source[key]


def _put(target: dict[str, Any], key: str, value: str | None) -> None:
    if value is not None:
        target[key] = value
