"""The service's PartyStore (service/parties.py): peers, read and written through sessions
(registration is rare; the hot path reads peers through the service's cache)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chargegate.service.parties import PartyExists

from .models import Party


class SqlPartyStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(self, values: dict[str, Any]) -> Party:
        party = Party(**values)
        try:
            async with self._sessions.begin() as s:
                s.add(party)
        except IntegrityError as exc:
            raise PartyExists(
                f"a {values['role']} party {values['country_code']}/{values['party_id']} "
                "is already registered"
            ) from exc
        return party

    async def all(self) -> list[Party]:
        async with self._sessions() as s:
            return list(await s.scalars(select(Party).order_by(Party.id)))

    async def get(self, party_pk: int) -> Party | None:
        async with self._sessions() as s:
            return await s.get(Party, party_pk)

    async def by_token_hash(self, hashes: Collection[str]) -> Party | None:
        async with self._sessions() as s:
            party: Party | None = await s.scalar(
                select(Party).where(
                    or_(Party.token_a_hash.in_(hashes), Party.token_c_hash.in_(hashes))
                )
            )
            return party

    async def update(self, party_pk: int, values: dict[str, Any]) -> None:
        async with self._sessions.begin() as s:
            party = await s.get(Party, party_pk)
            assert party is not None
            for name, value in values.items():
                setattr(party, name, value)

    async def claim_token_a(self, party_pk: int, token_a_hash: str) -> bool:
        """Void token A if it is still this party's: one conditional UPDATE, so of concurrent
        handshakes with one token A exactly one sees a row changed."""
        async with self._sessions.begin() as s:
            result = await s.execute(
                update(Party)
                .where(Party.id == party_pk, Party.token_a_hash == token_a_hash)
                .values(token_a_hash=None)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def restore_token_a(self, party_pk: int, token_a_hash: str) -> bool:
        """Give a claimed token A back, unless the party registered (or got another token A)
        in the meantime."""
        async with self._sessions.begin() as s:
            result = await s.execute(
                update(Party)
                .where(
                    Party.id == party_pk,
                    Party.token_a_hash.is_(None),
                    Party.token_c_hash.is_(None),
                )
                .values(token_a_hash=token_a_hash)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]
