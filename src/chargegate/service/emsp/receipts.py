"""Sessions and CDRs a CPO pushes to our eMSP role: stored, and linked to the command that
started them so the API client hears of them on the command's stream.

Linking, most certain first: the authorization reference we sent (2.2.1 `authorization_reference`,
GIREVE 2.1.1 `authorization_id`); for a CDR, the Session it names; failing both, the latest
START_SESSION to this peer for the same token at the same location within the match window."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from chargegate.domain.clock import utcnow
from chargegate.domain.emsp_commands import EventKind
from chargegate.settings import Settings

from .commands import EmspCommands
from .events import EmspEvents
from .records import Peer, PushedCdr, PushedSession
from .store_ports import CommandReads


class InvalidObject(ValueError):
    """The pushed object cannot be stored; the message names the field."""


def plain(value: Any, max_length: int) -> str | None:
    """`value` as text if it can be stored and looked up as an OCPI identifier: printable (no
    NUL, which PostgreSQL text refuses) and at most `max_length` characters; None otherwise, as
    if absent (such a value cannot name anything we sent)."""
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value)
    ok = 0 < len(text) <= max_length and text.isprintable()
    return text if ok else None


def reference_of(obj: dict[str, Any]) -> str | None:
    return plain(obj.get("authorization_reference") or obj.get("authorization_id"), 36)


def _session_id(cdr: dict[str, Any]) -> str | None:
    return plain(cdr["session_id"], 36) if isinstance(cdr.get("session_id"), str) else None


def _token_and_location(version: str, obj: dict[str, Any]) -> tuple[str | None, str | None]:
    """What a Session says about its token and place: (token uid or contract, location id)."""
    if version == "2.1.1":
        location = obj.get("location") if isinstance(obj.get("location"), dict) else {}
        return plain(obj.get("auth_id"), 36), plain((location or {}).get("id"), 39)
    token = obj.get("cdr_token") if isinstance(obj.get("cdr_token"), dict) else {}
    return plain((token or {}).get("uid"), 36), plain(obj.get("location_id"), 39)


class EmspReceipts:
    def __init__(self, settings: Settings, events: EmspEvents, commands: EmspCommands) -> None:
        self._settings = settings
        self._events = events
        self._commands = commands

    # ---- Sessions ----------------------------------------------------------------------------

    async def put_session(
        self,
        peer: Peer,
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
        async with self._events.writing() as tx:
            stored = await tx.session(peer.id, (country_code, party_id), session_id)
            if stored is None:
                if partial:
                    raise LookupError(session_id)
                stored = PushedSession(
                    peer_id=peer.id,
                    country_code=country_code,
                    party_id=party_id,
                    session_id=session_id,
                    object={},
                    received_at=now,
                    updated_at=now,
                )
            merged = {**(stored.object or {}), **obj} if partial else dict(obj)
            command_id = stored.command_id
            if command_id is None:
                command_id = await self._match_session(tx, peer, version, merged)
            saved = await tx.save_session(
                dataclasses.replace(
                    stored,
                    object=merged,
                    status=plain(str(merged.get("status"))[:16], 16)
                    if merged.get("status")
                    else None,
                    authorization_reference=reference_of(merged),
                    updated_at=now,
                    command_id=command_id,
                )
            )
            if saved.command_id is not None:
                await self._commands.emit(tx, saved.command_id, EventKind.SESSION)

    async def get_session(
        self, peer: Peer, party: tuple[str, str], session_id: str
    ) -> dict[str, Any] | None:
        async with self._events.reading() as reads:
            found = await reads.session(peer.id, (party[0].upper(), party[1].upper()), session_id)
        return dict(found.object) if found is not None else None

    async def _match_session(
        self, reads: CommandReads, peer: Peer, version: str, obj: dict[str, Any]
    ) -> str | None:
        by_reference = await _by_reference(reads, peer, reference_of(obj))
        if by_reference is not None:
            return by_reference
        token, location = _token_and_location(version, obj)
        if not token or not location:
            return None
        return await reads.unlinked_start_session(
            peer.id,
            since=utcnow() - timedelta(seconds=self._settings.emsp_match_window),
            token_field="contract_id" if version == "2.1.1" else "token_uid",
            token=str(token),
            location_id=str(location),
        )

    # ---- CDRs --------------------------------------------------------------------------------

    async def post_cdr(self, peer: Peer, version: str, obj: Any) -> int:
        """Store a CDR; the same CDR POSTed again (a retry) is the first one. Returns its key."""
        if not isinstance(obj, dict):
            raise InvalidObject("the body must be a CDR object")
        cdr_id = obj.get("id")
        if not isinstance(cdr_id, str) or plain(cdr_id, 39) is None:
            raise InvalidObject("id: a CDR needs an id of 1 to 39 printable characters")
        # 2.1.1 CDRs do not name their owner: the peer's identity stands in.
        country_code = (plain(obj.get("country_code"), 2) or peer.country_code or "").upper()
        party_id = (plain(obj.get("party_id"), 3) or peer.party_id or "").upper()
        async with self._events.writing() as tx:
            known = await tx.cdr_pk(peer.id, (country_code, party_id), cdr_id)
            if known is not None:
                return known
            session_id = _session_id(obj)
            command_id = await self._match_cdr(tx, peer, version, obj, (country_code, party_id))
            pk = await tx.add_cdr(
                PushedCdr(
                    peer_id=peer.id,
                    country_code=country_code,
                    party_id=party_id,
                    cdr_id=cdr_id,
                    session_id=session_id,
                    authorization_reference=reference_of(obj),
                    command_id=command_id,
                    object=obj,
                    received_at=utcnow(),
                )
            )
            if command_id is not None:
                await self._commands.emit(tx, command_id, EventKind.CDR)
            return pk

    async def _match_cdr(
        self,
        reads: CommandReads,
        peer: Peer,
        version: str,
        obj: dict[str, Any],
        party: tuple[str, str],
    ) -> str | None:
        by_reference = await _by_reference(reads, peer, reference_of(obj))
        if by_reference is not None:
            return by_reference
        session_id = _session_id(obj)
        if session_id is not None:
            session = await reads.session(peer.id, party, session_id)
            return session.command_id if session is not None else None
        if version != "2.1.1":
            return None
        # 2.1.1 CDRs name no session: the linked Session with the same token, place and start.
        location = obj.get("location") if isinstance(obj.get("location"), dict) else {}
        wanted = (obj.get("auth_id"), (location or {}).get("id"), obj.get("start_date_time"))
        for session in await reads.linked_sessions(peer.id, 200):
            o = session.object or {}
            place = o.get("location") if isinstance(o.get("location"), dict) else {}
            if (o.get("auth_id"), (place or {}).get("id"), o.get("start_datetime")) == wanted:
                return session.command_id
        return None

    async def get_cdr(self, peer: Peer, pk: int) -> dict[str, Any] | None:
        async with self._events.reading() as reads:
            found = await reads.cdr(pk)
        return dict(found.object) if found is not None and found.peer_id == peer.id else None

    # ---- for the API -------------------------------------------------------------------------

    async def sessions_of(
        self, *, api_key_id: int | None, command_id: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """Newest first; `api_key_id` limits them to sessions of that key's commands."""
        async with self._events.reading() as reads:
            found = await reads.sessions_of(
                api_key_id=api_key_id, command_id=command_id, limit=limit
            )
        return [
            {
                "country_code": r.country_code,
                "party_id": r.party_id,
                "id": r.session_id,
                "command_id": r.command_id,
                "status": r.status,
                "object": r.object,
            }
            for r in found
        ]

    async def cdrs_of(
        self, *, api_key_id: int | None, command_id: str | None, limit: int
    ) -> list[dict[str, Any]]:
        async with self._events.reading() as reads:
            found = await reads.cdrs_of(api_key_id=api_key_id, command_id=command_id, limit=limit)
        return [
            {
                "country_code": r.country_code,
                "party_id": r.party_id,
                "id": r.cdr_id,
                "command_id": r.command_id,
                "object": r.object,
            }
            for r in found
        ]


async def _by_reference(reads: CommandReads, peer: Peer, reference: str | None) -> str | None:
    """The command this peer was sent with this authorization reference, if any."""
    if not reference:
        return None
    return await reads.command_by_reference(peer.id, reference)
