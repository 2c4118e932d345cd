"""Send a command to a CPO as an eMSP, follow it through the CPO's answer and result, and tell
the API client about every change (events for the SSE stream and webhooks)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chargegate.domain import commands as dc
from chargegate.domain import emsp_commands as ec
from chargegate.domain.clock import as_utc, ocpi_datetime, utcnow
from chargegate.domain.commands import CommandType
from chargegate.domain.emsp_commands import (
    CpoAnswer,
    EmspCommandState,
    EmspRequestError,
    Snapshot,
    Transition,
)
from chargegate.domain.ids import new_id
from chargegate.settings import Settings
from chargegate.store.models import EmspCdr, EmspCommand, EmspPeer, EmspSession

from .events import EmspEvents
from .identity import emsp_base, our_business_name, our_party
from .peers import EmspPeers, peer_name
from .ports import BodyError, CpoCommandChannel, Target

log = logging.getLogger(__name__)

_RETRIES = 20


@dataclass(frozen=True, slots=True)
class Requester:
    """The API key a request came with."""

    key_id: int | None
    scopes: frozenset[str]


class _Lost(Exception):
    """Another writer changed the command between our read and our write: read again."""


def _snapshot(c: EmspCommand) -> Snapshot:
    return Snapshot(CommandType(c.type), EmspCommandState(c.state), c.response_result, c.result)


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


class EmspCommands:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        peers: EmspPeers,
        channel: CpoCommandChannel,
        events: EmspEvents,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._peers = peers
        self._channel = channel
        self._events = events

    # ---- submit ------------------------------------------------------------------------------

    async def submit(
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
        async with self._sessions() as s:
            peer = await self._peers.find(s, peer_ref)
        version = peer.ocpi_version or ""
        ec.check_supported(command_type, version, peer.profile)
        commands_url = (peer.endpoints or {}).get("commands")
        if not commands_url:
            raise EmspRequestError(
                "conflict", f"peer {peer_name(peer)} lists no commands endpoint; it takes none"
            )
        gireve = peer.profile == "gireve"
        if gireve and isinstance(request, dc.StartSession) and not request.evse_uid:
            raise EmspRequestError(
                "invalid",
                "evse_uid is required: GIREVE IOP needs it in every START_SESSION "
                "(IOP eMSP profile, 'evse_uid' mandatory in StartSession)",
            )
        request = self._with_reference(request, version, gireve)
        command_id = new_id()
        ref = secrets.token_urlsafe(24)
        response_url = f"{emsp_base(self._settings)}/{version}/commands/{command_type.value}/{ref}"
        now = utcnow()
        try:
            body = self._channel.body(
                version,
                request,
                response_url,
                gireve=gireve,
                owner=our_party(self._settings),
                issuer=our_business_name(self._settings),
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
        token = getattr(request, "token", None)
        row = EmspCommand(
            id=command_id,
            peer_id=peer.id,
            ocpi_version=version,
            type=command_type.value,
            api_key_id=requester.key_id,
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
        try:
            async with self._events.writing() as s:
                s.add(row)
                await s.flush()
                self._events.append(s, row, ec.EventKind.REQUESTED, await self.view(s, row))
        except IntegrityError:
            if idempotency_key is None:
                raise
            # The same key, sent twice at once: the other request won and sends the command.
            earlier = await self._replay(requester, idempotency_key, request_hash)
            if earlier is None:
                raise
            return earlier, False
        # Shielded: once the command is on its way, its answer is recorded even if the API
        # client hangs up meanwhile.
        await asyncio.shield(self._send(target, command_type.value, body, command_id))
        async with self._sessions() as s:
            stored = await s.get(EmspCommand, command_id)
            assert stored is not None
            return await self.view(s, stored), True

    async def _send(
        self, target: Target, command: str, body: dict[str, Any], command_id: str
    ) -> None:
        answer = await self._channel.send(target, command, body, command_id)
        await self._record_answer(command_id, answer)

    def _with_reference(
        self, request: dc.CommandRequest, version: str, gireve: bool
    ) -> dc.CommandRequest:
        """A fresh authorization reference for each START_SESSION (and 2.2.1 RESERVE_NOW) that
        the peer will echo, unless the client brought its own: it is how the Sessions and CDRs
        that come back find this command (2.2.1 authorization_reference; GIREVE 2.1.1
        authorization_id)."""
        fresh = new_id()
        if isinstance(request, dc.StartSession) and (version == "2.2.1" or gireve):
            if not request.authorization_reference:
                return dataclasses.replace(request, authorization_reference=fresh)
        elif isinstance(request, dc.ReserveNow) and version == "2.2.1":
            if not request.authorization_reference:
                return dataclasses.replace(request, authorization_reference=fresh)
        return request

    async def _replay(
        self, requester: Requester, idempotency_key: str, request_hash: str
    ) -> dict[str, Any] | None:
        async with self._sessions() as s:
            earlier = await s.scalar(
                select(EmspCommand).where(
                    EmspCommand.api_key_id == requester.key_id,
                    EmspCommand.idempotency_key == idempotency_key,
                )
            )
            if earlier is None:
                return None
            if earlier.request_hash != request_hash:
                raise EmspRequestError(
                    "mismatch",
                    f"Idempotency-Key {idempotency_key!r} was used for a different request "
                    f"(command {earlier.id}); use a new key for a new command",
                )
            return await self.view(s, earlier)

    async def _record_answer(self, command_id: str, answer: CpoAnswer) -> None:
        now = utcnow()

        def decide(c: EmspCommand) -> tuple[Transition, dict[str, Any]]:
            snapshot = _snapshot(c)
            if answer.failure is not None:
                return ec.on_failure(snapshot), {"failure": answer.failure}
            values: dict[str, Any] = {
                "response_status_code": answer.status_code,
                "response_result": answer.result,
                "response_message": answer.message,
                "response_timeout": answer.timeout if c.ocpi_version == "2.2.1" else None,
                "responded_at": now,
            }
            if answer.result == "ACCEPTED":
                announced = answer.timeout if c.ocpi_version == "2.2.1" else None
                wait = announced or self._settings.emsp_default_result_timeout
                values["expires_at"] = now + timedelta(seconds=wait)
            return ec.on_response(dataclasses.replace(snapshot, response_result=answer.result)), (
                values
            )

        await self._transition(command_id, decide)

    # ---- results -----------------------------------------------------------------------------

    async def record_result(
        self,
        peer: EmspPeer,
        version: str,
        command: str,
        ref: str,
        result: str,
        message: str | None,
    ) -> str | None:
        """A result POSTed to one of our response_urls. Raises LookupError when the URL is not
        one we gave this peer for this command; returns a note when the result was not taken."""
        async with self._sessions() as s:
            command_id = await s.scalar(
                select(EmspCommand.id).where(
                    EmspCommand.response_ref == ref,
                    EmspCommand.peer_id == peer.id,
                    EmspCommand.type == command,
                    EmspCommand.ocpi_version == version,
                )
            )
        if command_id is None:
            raise LookupError(ref)
        now = utcnow()

        def decide(c: EmspCommand) -> tuple[Transition, dict[str, Any]]:
            transition = ec.on_result(_snapshot(c), result)
            values: dict[str, Any] = {}
            if transition.store_result:
                values = {"result": result, "result_message": message, "result_at": now}
            return transition, values

        _, transition = await self._transition(command_id, decide)
        if transition.note:
            log.warning("command %s: %s", command_id, transition.note)
        return transition.note

    # ---- deadlines ---------------------------------------------------------------------------

    async def resolve_expired(self) -> int:
        """EXPIRED for commands whose announced timeout passed; FAILED for commands sent by a
        process that stopped before it recorded the CPO's answer."""
        now = utcnow()
        stale = now - timedelta(seconds=2 * self._settings.emsp_http_timeout + 5)
        async with self._sessions() as s:
            due = list(
                await s.scalars(
                    select(EmspCommand.id).where(
                        or_(
                            and_(
                                EmspCommand.state == EmspCommandState.RESPONDED.value,
                                EmspCommand.response_result == "ACCEPTED",
                                EmspCommand.expires_at <= now,
                            ),
                            and_(
                                EmspCommand.state == EmspCommandState.REQUESTED.value,
                                EmspCommand.created_at <= stale,
                            ),
                        )
                    )
                )
            )

        def decide(c: EmspCommand) -> tuple[Transition, dict[str, Any]]:
            transition = ec.on_deadline(_snapshot(c))
            if transition.state is EmspCommandState.FAILED:
                return transition, {
                    "failure": "no answer from the CPO was recorded (the gateway stopped while "
                    "sending?); the CPO may have the command, so check its Sessions before "
                    "sending it again"
                }
            return transition, {}

        for command_id in due:
            await self._transition(command_id, decide)
        return len(due)

    # ---- one writer at a time per command ----------------------------------------------------

    async def _transition(
        self,
        command_id: str,
        decide: Callable[[EmspCommand], tuple[Transition, dict[str, Any]]],
    ) -> tuple[EmspCommand, Transition]:
        """Read, decide, write `WHERE revision = <read>`; read again if someone else wrote."""
        for _ in range(_RETRIES):
            try:
                async with self._events.writing() as s:
                    c = await s.scalar(
                        select(EmspCommand)
                        .where(EmspCommand.id == command_id)
                        .execution_options(populate_existing=True)
                    )
                    assert c is not None
                    transition, values = decide(c)
                    if transition.state.value == c.state and not transition.events and not values:
                        return c, transition
                    values.update(
                        state=transition.state.value, revision=c.revision + 1, updated_at=utcnow()
                    )
                    written = await s.execute(
                        update(EmspCommand)
                        .where(EmspCommand.id == command_id, EmspCommand.revision == c.revision)
                        .values(**values)
                    )
                    if written.rowcount != 1:  # type: ignore[attr-defined]
                        raise _Lost
                    await s.refresh(c)
                    view = await self.view(s, c)
                    for kind in transition.events:
                        self._events.append(s, c, kind, _as_of(kind, view))
                return c, transition
            except _Lost:
                continue
        raise RuntimeError(f"command {command_id}: too many concurrent changes")

    async def emit(self, s: AsyncSession, command_id: str, kind: ec.EventKind) -> None:
        """An event about something linked to the command (its Session, its CDR), written in
        the caller's `EmspEvents.writing()` transaction."""
        c = await s.get(EmspCommand, command_id)
        if c is not None:
            self._events.append(s, c, kind, await self.view(s, c))

    # ---- reading -----------------------------------------------------------------------------

    async def get(self, requester: Requester, command_id: str) -> dict[str, Any]:
        async with self._sessions() as s:
            c = await s.get(EmspCommand, command_id)
            if c is None or not self.visible(requester, c):
                raise EmspRequestError("not_found", f"no command {command_id!r}")
            return await self.view(s, c)

    async def list(
        self,
        requester: Requester,
        *,
        peer: str | None = None,
        state: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        query = select(EmspCommand)
        if not ec.sees_all(requester.scopes):
            query = query.where(EmspCommand.api_key_id == requester.key_id)
        if state:
            query = query.where(EmspCommand.state == state.upper())
        async with self._sessions() as s:
            if peer:
                found = await self._peers.find(s, peer, connected=False)
                query = query.where(EmspCommand.peer_id == found.id)
            rows = await s.scalars(
                query.order_by(EmspCommand.created_at.desc()).offset(offset).limit(limit)
            )
            return [await self.view(s, c) for c in rows]

    @staticmethod
    def visible(requester: Requester, c: EmspCommand) -> bool:
        return ec.sees_all(requester.scopes) or c.api_key_id == requester.key_id

    async def view(self, s: AsyncSession, c: EmspCommand) -> dict[str, Any]:
        """The command as the API, the SSE stream and webhooks show it."""
        peer = await s.get(EmspPeer, c.peer_id)
        session = await s.scalar(
            select(EmspSession)
            .where(EmspSession.command_id == c.id)
            .order_by(EmspSession.updated_at.desc())
            .limit(1)
        )
        cdr = await s.scalar(
            select(EmspCdr).where(EmspCdr.command_id == c.id).order_by(EmspCdr.pk.desc()).limit(1)
        )
        state = EmspCommandState(c.state)
        sent = {k: v for k, v in (c.body or {}).items() if k != "response_url"}
        out: dict[str, Any] = {
            "id": c.id,
            "peer": peer_name(peer) if peer else None,
            "command": c.type,
            "ocpi_version": c.ocpi_version,
            "state": state.value,
            "final": ec.is_final(state, c.response_result),
            "authorization_reference": c.authorization_reference,
            "request": c.params,
            "sent": sent,
            "response": None,
            "expires_at": _time(c.expires_at),
            "result": None,
            "failure": c.failure,
            "session": None,
            "cdr": None,
            "created_at": _time(c.created_at),
            "updated_at": _time(c.updated_at),
        }
        if c.responded_at is not None:
            out["response"] = {
                "status_code": c.response_status_code,
                "result": c.response_result,
                "timeout": c.response_timeout,
                "message": c.response_message,
                "at": _time(c.responded_at),
            }
        if c.result is not None:
            out["result"] = {
                "result": c.result,
                "message": c.result_message,
                "at": _time(c.result_at),
                "late": state is EmspCommandState.EXPIRED,
            }
        if session is not None:
            obj = session.object or {}
            out["session"] = {
                "id": session.session_id,
                "country_code": session.country_code,
                "party_id": session.party_id,
                "status": session.status,
                "kwh": obj.get("kwh"),
                "last_updated": obj.get("last_updated"),
            }
        if cdr is not None:
            obj = cdr.object or {}
            out["cdr"] = {
                "id": cdr.cdr_id,
                "total_energy": obj.get("total_energy"),
                "total_cost": obj.get("total_cost"),
            }
        return out


def _as_of(kind: ec.EventKind, view: dict[str, Any]) -> dict[str, Any]:
    """The view as it stood at this event. Only a RESPONDED told together with the result that
    beat it differs from the current view: it shows the command before its result."""
    if kind is not ec.EventKind.RESPONDED or view["state"] == EmspCommandState.RESPONDED.value:
        return view
    response = (view["response"] or {}).get("result")
    return {
        **view,
        "state": EmspCommandState.RESPONDED.value,
        "final": ec.is_final(EmspCommandState.RESPONDED, response),
        "result": None,
    }


def _time(value: Any) -> str | None:
    return ocpi_datetime(as_utc(value)) if value is not None else None
