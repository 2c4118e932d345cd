"""Commands module, CPO (Receiver) interface: POST {commands_endpoint}/{command}."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from chargegate.domain.commands import Peer
from chargegate.domain.outbound_policy import OutboundPolicy, OutboundRefused, check_peer_origin
from chargegate.gateway import gateway_of
from chargegate.service.parties import Caller

from . import status
from .auth import registered
from .envelope import OcpiError, ocpi_response, read_model
from .routing_headers import response_routing_headers
from .v211 import commands as v211
from .v221 import commands as v221

router = APIRouter(prefix="/ocpi/cpo", tags=["OCPI commands (CPO)"])

WIRE: dict[str, ModuleType] = {"2.1.1": v211, "2.2.1": v221}


def _example_bodies() -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            m.model_json_schema(ref_template="#/components/schemas/{model}")
                            for m in (v221.StartSession, v221.StopSession)
                        ]
                    },
                    "examples": {
                        "START_SESSION (2.1.1, GIREVE)": {
                            "value": {
                                "response_url": "https://emsp.example.com/ocpi/emsp/2.1.1/commands/START_SESSION/111-222",
                                "token": {
                                    "uid": "11111",
                                    "type": "OTHER",
                                    "auth_id": "22222",
                                    "issuer": "issuer",
                                    "valid": True,
                                    "whitelist": "ALWAYS",
                                    "last_updated": "2020-01-21T06:43:13Z",
                                },
                                "authorization_id": "aaa-vvv",
                                "location_id": "CP-001",
                                "evse_uid": "CP-001-1",
                            }
                        }
                    },
                }
            },
        }
    }


def registered_urls(caller: Caller) -> list[str]:
    """The URLs the peer gave at registration: its versions URL and its endpoints."""
    party = caller.party
    found = [party.versions_url] if party.versions_url else []
    return found + [url for url in (party.endpoints or {}).values() if isinstance(url, str)]


def check_response_url(
    policy: OutboundPolicy, caller: Caller, response_url: str, headers: dict[str, str]
) -> None:
    """Refuse at once, before anything is stored, a response_url we would not POST to
    (docs/security.md#outbound-calls-ssrf): 2001 naming the host and how to allow it."""
    try:
        check_peer_origin(policy, response_url, registered_urls(caller))
    except OutboundRefused as exc:
        raise OcpiError(
            status.INVALID_PARAMETERS, f"response_url refused: {exc}", 400, headers=headers
        ) from exc


def peer_of(caller: Caller, version: str) -> Peer:
    party = caller.party
    return Peer(
        id=party.id,
        country_code=party.country_code,
        party_id=party.party_id,
        ocpi_version=version,
        profile=party.profile,
    )


@router.post(
    "/{version}/commands/{command}",
    summary="Receive a command for a Charge Point",
    description=(
        "Answers at once with a CommandResponse; the station's outcome is POSTed later to "
        "`response_url` (2.1.1: CommandResponse, 2.2.1: CommandResult)."
    ),
    openapi_extra=_example_bodies(),
)
async def post_command(version: str, command: str, request: Request) -> Response:
    # What runs is command_answer, reached through ocpi/command_lane.py before FastAPI routes;
    # this route declares the endpoint in the OpenAPI document and serves it should the lane
    # not be installed (an app built from the routers alone).
    return await command_answer(request, version, command)


async def command_answer(request: Request, version: str, command: str) -> Response:
    """The whole endpoint: who calls, which command, its body, the CommandResponse."""
    caller = await registered(request)
    wire = WIRE.get(version)
    if wire is None:
        raise OcpiError(status.UNSUPPORTED_VERSION, f"unsupported version {version!r}", 404)
    headers = response_routing_headers(request, caller, version)
    model = wire.MODELS.get(command)
    if model is None:
        raise OcpiError(
            status.INVALID_PARAMETERS,
            f"unknown command {command!r}; OCPI {version} commands are {', '.join(wire.COMMANDS)}",
            http_status=404,
            headers=headers,
        )
    parsed = await read_model(request, model, headers)
    gateway = gateway_of(request)
    check_response_url(gateway.settings.outbound_policy, caller, parsed.response_url, headers)
    reply = await gateway.commands.submit(
        peer_of(caller, version),
        parsed.to_domain(),
        parsed.response_url,
        request.scope.get("state", {}).get("correlation_id"),
    )
    data = wire.response_data(reply, int(gateway.settings.command_timeout))
    return ocpi_response(data, reply.ocpi_status, reply.message, headers=headers)
