"""Sending a command to a CPO as an eMSP: check it, store it (REQUESTED, with its event), send
it, record the CPO's answer. An Idempotency-Key replays the earlier command instead."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chargegate.domain import commands as dc
from chargegate.domain import emsp_commands as ec
from chargegate.domain.clock import utcnow
from chargegate.domain.commands import CommandType
from chargegate.domain.emsp_commands import EmspCommandState, EmspRequestError
from chargegate.domain.ids import new_id
from chargegate.settings import Settings

from .answers import RecordAnswer
from .events import EmspEvents
from .identity import emsp_base, our_business_name, our_party
from .peers import EmspPeers, peer_name
from .ports import BodyError, CpoCommandChannel, SenderIdentity, Target
from .records import Peer, SentCommand
from .store_ports import DuplicateCommand
from .views import Requester, command_view


@dataclass(frozen=True, slots=True)
class _Outgoing:
    """A command ready to store and send."""

    command: SentCommand
    target: Target


class SubmitCommand:
    def __init__(
        self,
        settings: Settings,
        events: EmspEvents,
        peers: EmspPeers,
        channel: CpoCommandChannel,
        record_answer: RecordAnswer,
    ) -> None:
        self._settings = settings
        self._events = events
        self._peers = peers
        self._channel = channel
        self._record_answer = record_answer

    async def __call__(
        self,
        requester: Requester,
        peer_ref: str,
        request: dc.CommandRequest,
        params: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        to_party: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Store the command, send it, record the CPO's answer. Returns the command's view and
        whether it is new (False: an earlier request with the same idempotency key)."""
        command_type = dc.COMMAND_OF_REQUEST[type(request)]
        ec.check_allowed(command_type, requester.scopes)
        request_hash = _request_hash(peer_ref, command_type, {**params, "to_party": to_party})
        if idempotency_key is not None:
            earlier = await self._replay(requester, idempotency_key, request_hash)
            if earlier is not None:
                return earlier, False
        peer = await self._peers.find(peer_ref)
        commands_url = _commands_url(peer, command_type, request)
        outgoing = self._prepare(
            peer,
            commands_url,
            request,
            params,
            requester=requester,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            to_party=to_party,
        )
        try:
            await self._store(outgoing.command)
        except DuplicateCommand:
            if idempotency_key is None:
                raise
            # The same key, sent twice at once: the other request won and sends the command.
            earlier = await self._replay(requester, idempotency_key, request_hash)
            if earlier is None:
                raise
            return earlier, False
        # Shielded: once the command is on its way, its answer is recorded even if the API
        # client hangs up meanwhile.
        await asyncio.shield(self._send(outgoing))
        return await self._view(outgoing.command.id), True

    async def _replay(
        self, requester: Requester, idempotency_key: str, request_hash: str
    ) -> dict[str, Any] | None:
        """The earlier command sent with this key, if any; the same key for another request is
        an error."""
        async with self._events.reading() as reads:
            earlier = await reads.by_idempotency_key(requester.key_id, idempotency_key)
            if earlier is None:
                return None
            if earlier.request_hash != request_hash:
                raise EmspRequestError(
                    "mismatch",
                    f"Idempotency-Key {idempotency_key!r} was used for a different request "
                    f"(command {earlier.id}); use a new key for a new command",
                )
            return await command_view(reads, earlier)

    def _prepare(
        self,
        peer: Peer,
        commands_url: str,
        request: dc.CommandRequest,
        params: dict[str, Any],
        *,
        requester: Requester,
        idempotency_key: str | None,
        request_hash: str,
        to_party: str | None,
    ) -> _Outgoing:
        """The body in the peer's version, with a response_url of ours, and where it goes."""
        command_type = dc.COMMAND_OF_REQUEST[type(request)]
        version = peer.ocpi_version or ""
        gireve = peer.profile == "gireve"
        request = _with_reference(request, version, gireve)
        ref = secrets.token_urlsafe(24)
        response_url = f"{emsp_base(self._settings)}/{version}/commands/{command_type.value}/{ref}"
        now = utcnow()
        try:
            body = self._channel.body(
                version,
                request,
                response_url,
                gireve=gireve,
                sender=SenderIdentity(our_party(self._settings), our_business_name(self._settings)),
                now=now,
            )
        except BodyError as exc:
            raise EmspRequestError("invalid", str(exc)) from exc
        target = Target(
            version=version,
            commands_url=commands_url,
            token=peer.token_c or "",
            plain_token=peer.plain_token,
            from_party=our_party(self._settings),
            to_party=_parse_party(to_party)
            if to_party
            else (peer.country_code or "", peer.party_id or ""),
        )
        command = _requested(
            request,
            peer_id=peer.id,
            version=version,
            api_key_id=requester.key_id,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            params=params,
            body=body,
            ref=ref,
            now=now,
        )
        return _Outgoing(command, target)

    async def _store(self, command: SentCommand) -> None:
        """The command REQUESTED, with its event. Raises DuplicateCommand."""
        async with self._events.writing() as tx:
            await tx.add_command(command)
            view = await command_view(tx, command)
            tx.append_event(command, ec.EventKind.REQUESTED, view)

    async def _send(self, outgoing: _Outgoing) -> None:
        command = outgoing.command
        answer = await self._channel.send(outgoing.target, command.type, command.body, command.id)
        await self._record_answer(command.id, answer)

    async def _view(self, command_id: str) -> dict[str, Any]:
        async with self._events.reading() as reads:
            stored = await reads.command(command_id)
            assert stored is not None
            return await command_view(reads, stored)


def _commands_url(peer: Peer, command_type: CommandType, request: dc.CommandRequest) -> str:
    """Where the peer takes commands, if it takes this one from us."""
    ec.check_supported(command_type, peer.ocpi_version or "", peer.profile)
    commands_url: str | None = (peer.endpoints or {}).get("commands")
    if not commands_url:
        raise EmspRequestError(
            "conflict", f"peer {peer_name(peer)} lists no commands endpoint; it takes none"
        )
    if peer.profile == "gireve" and isinstance(request, dc.StartSession) and not request.evse_uid:
        raise EmspRequestError(
            "invalid",
            "evse_uid is required: GIREVE IOP needs it in every START_SESSION "
            "(IOP eMSP profile, 'evse_uid' mandatory in StartSession)",
        )
    return commands_url


def _with_reference(request: dc.CommandRequest, version: str, gireve: bool) -> dc.CommandRequest:
    """A fresh authorization reference for each START_SESSION (and 2.2.1 RESERVE_NOW) that the
    peer will echo, unless the client brought its own: it is how the Sessions and CDRs that come
    back find this command (2.2.1 authorization_reference; GIREVE 2.1.1 authorization_id)."""
    fresh = new_id()
    if isinstance(request, dc.StartSession) and (version == "2.2.1" or gireve):
        if not request.authorization_reference:
            return dataclasses.replace(request, authorization_reference=fresh)
    elif isinstance(request, dc.ReserveNow) and version == "2.2.1":
        if not request.authorization_reference:
            return dataclasses.replace(request, authorization_reference=fresh)
    return request


def _requested(
    request: dc.CommandRequest,
    *,
    peer_id: int,
    version: str,
    api_key_id: int | None,
    idempotency_key: str | None,
    request_hash: str,
    params: dict[str, Any],
    body: dict[str, Any],
    ref: str,
    now: datetime,
) -> SentCommand:
    """The new command as stored before it is sent."""
    token = getattr(request, "token", None)
    return SentCommand(
        id=new_id(),
        peer_id=peer_id,
        ocpi_version=version,
        type=dc.COMMAND_OF_REQUEST[type(request)].value,
        api_key_id=api_key_id,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        params=params,
        body=body,
        response_ref=ref,
        authorization_reference=getattr(request, "authorization_reference", None),
        token_uid=token.uid if token else None,
        contract_id=token.contract_id if token else None,
        location_id=getattr(request, "location_id", None),
        state=EmspCommandState.REQUESTED.value,
        revision=0,
        created_at=now,
        updated_at=now,
    )


def _request_hash(peer: str, command: CommandType, params: dict[str, Any]) -> str:
    canonical = json.dumps(
        {"peer": peer.upper(), "command": command.value, "params": params},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _parse_party(value: str) -> tuple[str, str]:
    code = value.replace("-", "").replace("*", "").upper()
    if len(code) != 5:
        raise EmspRequestError(
            "invalid", f"to_party: want COUNTRY-PARTY like FR-ABC, got {value!r}"
        )
    return code[:2], code[2:]
