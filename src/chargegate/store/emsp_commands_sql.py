"""The eMSP commands we send, their event log, and the Sessions and CDRs peers push to us, in
SQL (the CommandStore of service/emsp/store_ports.py). Not a hot path: plain ORM sessions."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chargegate.domain.clock import utcnow
from chargegate.domain.emsp_commands import EmspCommandState, EventKind
from chargegate.service.emsp.records import (
    CommandEvent,
    Peer,
    PushedCdr,
    PushedSession,
    SentCommand,
)
from chargegate.service.emsp.store_ports import DuplicateCommand

from .emsp_rows import as_record, column_values
from .models import EmspCdr, EmspCommand, EmspCommandEvent, EmspPeer, EmspSession

Q = TypeVar("Q", bound=Select[Any])


class CommandTransaction:
    """Reads and writes of commands in one session's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def command(self, command_id: str) -> SentCommand | None:
        row = await self._s.scalar(
            select(EmspCommand)
            .where(EmspCommand.id == command_id)
            .execution_options(populate_existing=True)
        )
        return as_record(SentCommand, row) if row is not None else None

    async def peer(self, peer_id: int) -> Peer | None:
        row = await self._s.get(EmspPeer, peer_id)
        return as_record(Peer, row) if row is not None else None

    async def by_idempotency_key(self, api_key_id: int | None, key: str) -> SentCommand | None:
        row = await self._s.scalar(
            select(EmspCommand).where(
                EmspCommand.api_key_id == api_key_id, EmspCommand.idempotency_key == key
            )
        )
        return as_record(SentCommand, row) if row is not None else None

    async def command_for_result(
        self, response_ref: str, peer_id: int, command_type: str, version: str
    ) -> str | None:
        command_id: str | None = await self._s.scalar(
            select(EmspCommand.id).where(
                EmspCommand.response_ref == response_ref,
                EmspCommand.peer_id == peer_id,
                EmspCommand.type == command_type,
                EmspCommand.ocpi_version == version,
            )
        )
        return command_id

    async def due_commands(self, now: datetime, stale_before: datetime) -> list[str]:
        return list(
            await self._s.scalars(
                select(EmspCommand.id).where(
                    or_(
                        and_(
                            # expires_at is set while a result is awaited (ACCEPTED, or
                            # a success we could not read).
                            EmspCommand.state == EmspCommandState.RESPONDED.value,
                            EmspCommand.expires_at <= now,
                        ),
                        and_(
                            EmspCommand.state == EmspCommandState.REQUESTED.value,
                            EmspCommand.created_at <= stale_before,
                        ),
                    )
                )
            )
        )

    async def commands(
        self,
        *,
        api_key_id: int | None,
        peer_id: int | None,
        state: str | None,
        limit: int,
        offset: int,
    ) -> list[SentCommand]:
        query = select(EmspCommand)
        if api_key_id is not None:
            query = query.where(EmspCommand.api_key_id == api_key_id)
        if state is not None:
            query = query.where(EmspCommand.state == state)
        if peer_id is not None:
            query = query.where(EmspCommand.peer_id == peer_id)
        rows = await self._s.scalars(
            query.order_by(EmspCommand.created_at.desc()).offset(offset).limit(limit)
        )
        return [as_record(SentCommand, row) for row in rows]

    async def latest_session_of(self, command_id: str) -> PushedSession | None:
        row = await self._s.scalar(
            select(EmspSession)
            .where(EmspSession.command_id == command_id)
            .order_by(EmspSession.updated_at.desc())
            .limit(1)
        )
        return as_record(PushedSession, row) if row is not None else None

    async def latest_cdr_of(self, command_id: str) -> PushedCdr | None:
        row = await self._s.scalar(
            select(EmspCdr)
            .where(EmspCdr.command_id == command_id)
            .order_by(EmspCdr.pk.desc())
            .limit(1)
        )
        return as_record(PushedCdr, row) if row is not None else None

    async def session(
        self, peer_id: int, party: tuple[str, str], session_id: str
    ) -> PushedSession | None:
        row = await self._s.scalar(_session_query(peer_id, party, session_id))
        return as_record(PushedSession, row) if row is not None else None

    async def cdr_pk(self, peer_id: int, party: tuple[str, str], cdr_id: str) -> int | None:
        pk = await self._s.scalar(
            select(EmspCdr.pk).where(
                EmspCdr.peer_id == peer_id,
                EmspCdr.country_code == party[0],
                EmspCdr.party_id == party[1],
                EmspCdr.cdr_id == cdr_id,
            )
        )
        return int(pk) if pk is not None else None

    async def cdr(self, pk: int) -> PushedCdr | None:
        row = await self._s.get(EmspCdr, pk)
        return as_record(PushedCdr, row) if row is not None else None

    async def command_by_reference(self, peer_id: int, reference: str) -> str | None:
        command_id: str | None = await self._s.scalar(
            select(EmspCommand.id)
            .where(
                EmspCommand.peer_id == peer_id,
                func.lower(EmspCommand.authorization_reference) == reference.lower(),
            )
            .order_by(EmspCommand.created_at.desc())
            .limit(1)
        )
        return command_id

    async def unlinked_start_session(
        self,
        peer_id: int,
        *,
        since: datetime,
        token_field: str,
        token: str,
        location_id: str,
    ) -> str | None:
        token_column = {"token_uid": EmspCommand.token_uid, "contract_id": EmspCommand.contract_id}
        linked = select(EmspSession.command_id).where(EmspSession.command_id.is_not(None))
        command_id: str | None = await self._s.scalar(
            select(EmspCommand.id)
            .where(
                EmspCommand.peer_id == peer_id,
                EmspCommand.type == "START_SESSION",
                EmspCommand.created_at >= since,
                func.lower(token_column[token_field]) == token.lower(),
                func.lower(EmspCommand.location_id) == location_id.lower(),
                EmspCommand.id.not_in(linked),
            )
            .order_by(EmspCommand.created_at.desc())
            .limit(1)
        )
        return command_id

    async def linked_sessions(self, peer_id: int, limit: int) -> list[PushedSession]:
        rows = await self._s.scalars(
            select(EmspSession)
            .where(EmspSession.peer_id == peer_id, EmspSession.command_id.is_not(None))
            .order_by(EmspSession.pk.desc())
            .limit(limit)
        )
        return [as_record(PushedSession, row) for row in rows]

    async def sessions_of(
        self, *, api_key_id: int | None, command_id: str | None, limit: int
    ) -> list[PushedSession]:
        query = select(EmspSession).order_by(EmspSession.updated_at.desc()).limit(limit)
        query = _of_commands(query, EmspSession, api_key_id, command_id)
        return [as_record(PushedSession, row) for row in await self._s.scalars(query)]

    async def cdrs_of(
        self, *, api_key_id: int | None, command_id: str | None, limit: int
    ) -> list[PushedCdr]:
        query = select(EmspCdr).order_by(EmspCdr.pk.desc()).limit(limit)
        query = _of_commands(query, EmspCdr, api_key_id, command_id)
        return [as_record(PushedCdr, row) for row in await self._s.scalars(query)]

    # ---- writes --------------------------------------------------------------------------

    async def add_command(self, command: SentCommand) -> None:
        self._s.add(EmspCommand(**column_values(command)))
        try:
            await self._s.flush()
        except IntegrityError as exc:
            raise DuplicateCommand(str(exc.orig)) from exc

    async def update_command(
        self, command_id: str, revision: int, values: dict[str, Any]
    ) -> SentCommand | None:
        written = await self._s.execute(
            update(EmspCommand)
            .where(EmspCommand.id == command_id, EmspCommand.revision == revision)
            .values(**values)
        )
        if written.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return await self.command(command_id)

    def append_event(self, command: SentCommand, kind: EventKind, data: dict[str, Any]) -> None:
        self._s.add(
            EmspCommandEvent(
                command_id=command.id,
                api_key_id=command.api_key_id,
                kind=kind.value,
                data=data,
                created_at=utcnow(),
            )
        )

    async def save_session(self, session: PushedSession) -> PushedSession:
        party = (session.country_code, session.party_id)
        row = await self._s.scalar(_session_query(session.peer_id, party, session.session_id))
        values = column_values(session)
        values.pop("pk", None)
        if row is None:
            row = EmspSession(**values)
            self._s.add(row)
        else:
            for name, value in values.items():
                setattr(row, name, value)
        await self._s.flush()
        return as_record(PushedSession, row)

    async def add_cdr(self, cdr: PushedCdr) -> int:
        row = EmspCdr(**column_values(cdr))
        self._s.add(row)
        await self._s.flush()
        return row.pk


def _of_commands(
    query: Q,
    model: type[EmspSession] | type[EmspCdr],
    api_key_id: int | None,
    command_id: str | None,
) -> Q:
    """Only the rows linked to a command of `api_key_id`, or to `command_id`, when given."""
    if api_key_id is not None:
        query = query.join(EmspCommand, EmspCommand.id == model.command_id).where(
            EmspCommand.api_key_id == api_key_id
        )
    if command_id is not None:
        query = query.where(model.command_id == command_id)
    return query


def _session_query(peer_id: int, party: tuple[str, str], session_id: str) -> Any:
    return select(EmspSession).where(
        EmspSession.peer_id == peer_id,
        EmspSession.country_code == party[0],
        EmspSession.party_id == party[1],
        EmspSession.session_id == session_id,
    )


class EmspCommandsSql:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, postgres: bool) -> None:
        self._sessions = sessions
        self._postgres = postgres

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[CommandTransaction]:
        async with self._sessions() as s:
            yield CommandTransaction(s)

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[CommandTransaction]:
        """A transaction that may append events. On PostgreSQL it locks the event table first,
        before any row lock (so two writers cannot deadlock): event ids then commit in order.
        SQLite has one writer at a time."""
        async with self._sessions.begin() as s:
            if self._postgres:
                await s.execute(text("LOCK TABLE emsp_command_events IN EXCLUSIVE MODE"))
            yield CommandTransaction(s)

    async def events_after(
        self, cursor: int, *, api_key_id: int | None, command_id: str | None, limit: int
    ) -> list[CommandEvent]:
        query = select(EmspCommandEvent).where(EmspCommandEvent.id > cursor)
        if api_key_id is not None:
            query = query.where(EmspCommandEvent.api_key_id == api_key_id)
        if command_id is not None:
            query = query.where(EmspCommandEvent.command_id == command_id)
        async with self._sessions() as s:
            rows = await s.scalars(query.order_by(EmspCommandEvent.id).limit(limit))
            return [as_record(CommandEvent, row) for row in rows]

    async def last_event_id(self) -> int:
        async with self._sessions() as s:
            return int(await s.scalar(select(func.max(EmspCommandEvent.id))) or 0)
