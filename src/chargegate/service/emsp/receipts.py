"""Sessions and CDRs a CPO pushes to our eMSP role: stored, and linked to the command that
started them so the API client hears of them on the command's stream.

Linking, most certain first: the authorization reference we sent (2.2.1 `authorization_reference`,
GIREVE 2.1.1 `authorization_id`); for a CDR, the Session it names; failing both, the latest
START_SESSION to this peer for the same token at the same location within the match window."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chargegate.domain.clock import utcnow
from chargegate.domain.emsp_commands import EventKind
from chargegate.settings import Settings
from chargegate.store.models import EmspCdr, EmspCommand, EmspPeer, EmspSession

from .commands import EmspCommands
from .events import EmspEvents


class InvalidObject(ValueError):
    """The pushed object cannot be stored; the message names the field."""


def reference_of(obj: dict[str, Any]) -> str | None:
    value = obj.get("authorization_reference") or obj.get("authorization_id")
    return str(value)[:36] if value else None


def _token_and_location(version: str, obj: dict[str, Any]) -> tuple[str | None, str | None]:
    """What a Session says about its token and place: (token uid or contract, location id)."""
    if version == "2.1.1":
        location = obj.get("location") if isinstance(obj.get("location"), dict) else {}
        return obj.get("auth_id"), (location or {}).get("id")
    token = obj.get("cdr_token") if isinstance(obj.get("cdr_token"), dict) else {}
    return (token or {}).get("uid"), obj.get("location_id")


class EmspReceipts:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        events: EmspEvents,
        commands: EmspCommands,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._events = events
        self._commands = commands

    # ---- Sessions ----------------------------------------------------------------------------

    async def put_session(
        self,
        peer: EmspPeer,
        version: str,
        party: tuple[str, str],
        session_id: str,
        obj: Any,
        *,
        partial: bool = False,
    ) -> None:
        """PUT stores the whole object; PATCH merges into the stored one (LookupError if none)."""
        if not isinstance(obj, dict):
            raise InvalidObject("the body must be a Session object")
        if "id" in obj and str(obj["id"]) != session_id:
            raise InvalidObject(f"id: {obj['id']!r} differs from the URL's {session_id!r}")
        country_code, party_id = party[0].upper(), party[1].upper()
        for field, value in (("country_code", country_code), ("party_id", party_id)):
            if field in obj and str(obj[field]).upper() != value:
                raise InvalidObject(f"{field}: {obj[field]!r} differs from the URL's {value!r}")
        now = utcnow()
        async with self._events.writing() as s:
            row = await s.scalar(
                select(EmspSession).where(
                    EmspSession.peer_id == peer.id,
                    EmspSession.country_code == country_code,
                    EmspSession.party_id == party_id,
                    EmspSession.session_id == session_id,
                )
            )
            if row is None:
                if partial:
                    raise LookupError(session_id)
                row = EmspSession(
                    peer_id=peer.id,
                    country_code=country_code,
                    party_id=party_id,
                    session_id=session_id,
                    object={},
                    received_at=now,
                    updated_at=now,
                )
                s.add(row)
            merged = {**(row.object or {}), **obj} if partial else dict(obj)
            row.object = merged
            row.status = str(merged.get("status"))[:16] if merged.get("status") else None
            row.authorization_reference = reference_of(merged)
            row.updated_at = now
            if row.command_id is None:
                row.command_id = await self._match_session(s, peer, version, merged)
            await s.flush()
            if row.command_id is not None:
                await self._commands.emit(s, row.command_id, EventKind.SESSION)

    async def get_session(
        self, peer: EmspPeer, party: tuple[str, str], session_id: str
    ) -> dict[str, Any] | None:
        async with self._sessions() as s:
            row = await s.scalar(
                select(EmspSession).where(
                    EmspSession.peer_id == peer.id,
                    EmspSession.country_code == party[0].upper(),
                    EmspSession.party_id == party[1].upper(),
                    EmspSession.session_id == session_id,
                )
            )
            return dict(row.object) if row is not None else None

    async def _match_session(
        self, s: AsyncSession, peer: EmspPeer, version: str, obj: dict[str, Any]
    ) -> str | None:
        by_reference = await self._by_reference(s, peer, reference_of(obj))
        if by_reference is not None:
            return by_reference
        token, location = _token_and_location(version, obj)
        if not token or not location:
            return None
        since = utcnow() - timedelta(seconds=self._settings.emsp_match_window)
        token_column = EmspCommand.contract_id if version == "2.1.1" else EmspCommand.token_uid
        linked = select(EmspSession.command_id).where(EmspSession.command_id.is_not(None))
        command_id: str | None = await s.scalar(
            select(EmspCommand.id)
            .where(
                EmspCommand.peer_id == peer.id,
                EmspCommand.type == "START_SESSION",
                EmspCommand.created_at >= since,
                func.lower(token_column) == str(token).lower(),
                func.lower(EmspCommand.location_id) == str(location).lower(),
                EmspCommand.id.not_in(linked),
            )
            .order_by(EmspCommand.created_at.desc())
            .limit(1)
        )
        return command_id

    @staticmethod
    async def _by_reference(s: AsyncSession, peer: EmspPeer, reference: str | None) -> str | None:
        if not reference:
            return None
        # CiString in 2.2.1: compared without regard to case.
        command_id: str | None = await s.scalar(
            select(EmspCommand.id)
            .where(
                EmspCommand.peer_id == peer.id,
                func.lower(EmspCommand.authorization_reference) == reference.lower(),
            )
            .order_by(EmspCommand.created_at.desc())
            .limit(1)
        )
        return command_id

    # ---- CDRs --------------------------------------------------------------------------------

    async def post_cdr(self, peer: EmspPeer, version: str, obj: Any) -> int:
        """Store a CDR; the same CDR POSTed again (a retry) is the first one. Returns its key."""
        if not isinstance(obj, dict):
            raise InvalidObject("the body must be a CDR object")
        cdr_id = obj.get("id")
        if not isinstance(cdr_id, str) or not cdr_id or len(cdr_id) > 39:
            raise InvalidObject("id: a CDR needs an id of 1 to 39 characters")
        # 2.1.1 CDRs do not name their owner: the peer's identity stands in.
        country_code = str(obj.get("country_code") or peer.country_code or "").upper()[:2]
        party_id = str(obj.get("party_id") or peer.party_id or "").upper()[:3]
        async with self._events.writing() as s:
            known = await s.scalar(
                select(EmspCdr.pk).where(
                    EmspCdr.peer_id == peer.id,
                    EmspCdr.country_code == country_code,
                    EmspCdr.party_id == party_id,
                    EmspCdr.cdr_id == cdr_id,
                )
            )
            if known is not None:
                return int(known)
            session_id = obj.get("session_id") if isinstance(obj.get("session_id"), str) else None
            row = EmspCdr(
                peer_id=peer.id,
                country_code=country_code,
                party_id=party_id,
                cdr_id=cdr_id,
                session_id=session_id,
                authorization_reference=reference_of(obj),
                command_id=await self._match_cdr(s, peer, version, obj, (country_code, party_id)),
                object=obj,
                received_at=utcnow(),
            )
            s.add(row)
            await s.flush()
            if row.command_id is not None:
                await self._commands.emit(s, row.command_id, EventKind.CDR)
            return row.pk

    async def _match_cdr(
        self,
        s: AsyncSession,
        peer: EmspPeer,
        version: str,
        obj: dict[str, Any],
        party: tuple[str, str],
    ) -> str | None:
        by_reference = await self._by_reference(s, peer, reference_of(obj))
        if by_reference is not None:
            return by_reference
        session_id = obj.get("session_id")
        if isinstance(session_id, str):
            command_id: str | None = await s.scalar(
                select(EmspSession.command_id).where(
                    EmspSession.peer_id == peer.id,
                    EmspSession.country_code == party[0],
                    EmspSession.party_id == party[1],
                    EmspSession.session_id == session_id,
                )
            )
            return command_id
        if version != "2.1.1":
            return None
        # 2.1.1 CDRs name no session: the linked Session with the same token, place and start.
        location = obj.get("location") if isinstance(obj.get("location"), dict) else {}
        wanted = (obj.get("auth_id"), (location or {}).get("id"), obj.get("start_date_time"))
        candidates = await s.scalars(
            select(EmspSession)
            .where(EmspSession.peer_id == peer.id, EmspSession.command_id.is_not(None))
            .order_by(EmspSession.pk.desc())
            .limit(200)
        )
        for session in candidates:
            o = session.object or {}
            place = o.get("location") if isinstance(o.get("location"), dict) else {}
            if (o.get("auth_id"), (place or {}).get("id"), o.get("start_datetime")) == wanted:
                return session.command_id
        return None

    async def get_cdr(self, peer: EmspPeer, pk: int) -> dict[str, Any] | None:
        async with self._sessions() as s:
            row = await s.get(EmspCdr, pk)
            return dict(row.object) if row is not None and row.peer_id == peer.id else None

    # ---- for the API -------------------------------------------------------------------------

    async def sessions_of(
        self, *, api_key_id: int | None, command_id: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """Newest first; `api_key_id` limits them to sessions of that key's commands."""
        query = select(EmspSession).order_by(EmspSession.updated_at.desc()).limit(limit)
        if api_key_id is not None:
            query = query.join(EmspCommand, EmspCommand.id == EmspSession.command_id).where(
                EmspCommand.api_key_id == api_key_id
            )
        if command_id is not None:
            query = query.where(EmspSession.command_id == command_id)
        async with self._sessions() as s:
            return [
                {
                    "country_code": r.country_code,
                    "party_id": r.party_id,
                    "id": r.session_id,
                    "command_id": r.command_id,
                    "status": r.status,
                    "object": r.object,
                }
                for r in await s.scalars(query)
            ]

    async def cdrs_of(
        self, *, api_key_id: int | None, command_id: str | None, limit: int
    ) -> list[dict[str, Any]]:
        query = select(EmspCdr).order_by(EmspCdr.pk.desc()).limit(limit)
        if api_key_id is not None:
            query = query.join(EmspCommand, EmspCommand.id == EmspCdr.command_id).where(
                EmspCommand.api_key_id == api_key_id
            )
        if command_id is not None:
            query = query.where(EmspCdr.command_id == command_id)
        async with self._sessions() as s:
            return [
                {
                    "country_code": r.country_code,
                    "party_id": r.party_id,
                    "id": r.cdr_id,
                    "command_id": r.command_id,
                    "object": r.object,
                }
                for r in await s.scalars(query)
            ]
