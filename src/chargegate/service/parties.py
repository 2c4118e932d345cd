"""Peers: registration by the operator, lookup by token, the credentials handshake's state."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chargegate.domain.clock import utcnow
from chargegate.domain.tokens import new_token, token_hash
from chargegate.store.models import Party

from .single_flight import SingleFlight

# How long a token's owner is remembered; another node's revocation takes effect within it.
CALLER_CACHE_SECONDS = 5.0

ROLES = ("EMSP", "CPO", "HUB", "NSP", "OTHER")
PROFILES = ("gireve",)


class PartyExists(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Caller:
    party: Party
    token: str
    with_token_a: bool


class PartyCache:
    """Peers by id, for the hot path (every command result needs its peer's token and
    version). Kept as long as callers are; read through the caller's own session, so that a miss
    never needs a second connection (SQLite has one)."""

    def __init__(self) -> None:
        self._parties: dict[int, tuple[float, Party]] = {}
        self._loads: SingleFlight[int, Party | None] = SingleFlight()
        # Bumped by `clear`: a read that started before a registration change keeps nothing.
        self._generation = 0

    def peek(self, party_id: int) -> Party | None:
        """The cached party, if it is still fresh; no database."""
        cached = self._parties.get(party_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        return None

    async def get(self, s: AsyncSession, party_id: int) -> Party | None:
        cached = self.peek(party_id)
        if cached is not None:
            return cached
        generation = self._generation
        party = await s.get(Party, party_id)
        if party is not None and generation == self._generation:
            if len(self._parties) > 10_000:
                self._parties.clear()
            self._parties[party_id] = (time.monotonic() + CALLER_CACHE_SECONDS, party)
        return party

    async def load(self, sessions: async_sessionmaker[AsyncSession], party_id: int) -> Party | None:
        """`get` through a session of its own; callers asking for one party at once share one
        read (when the entry expires under load, every result in flight asks)."""
        cached = self.peek(party_id)
        if cached is not None:
            return cached
        return await self._loads.run(party_id, lambda: self._load(sessions, party_id))

    async def _load(
        self, sessions: async_sessionmaker[AsyncSession], party_id: int
    ) -> Party | None:
        async with sessions() as s:
            return await self.get(s, party_id)

    def clear(self) -> None:
        self._generation += 1
        self._parties.clear()
        self._loads.forget()


class PartyService:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], cache: PartyCache | None = None
    ) -> None:
        self._sessions = sessions
        self._callers: dict[tuple[str, ...], tuple[float, Caller]] = {}
        self._lookups: SingleFlight[tuple[str, ...], Caller | None] = SingleFlight()
        # Bumped on every registration change: a lookup that started before one keeps nothing.
        self._generation = 0
        self.cache = cache or PartyCache()

    async def add(
        self,
        *,
        role: str,
        country_code: str,
        party_id: str,
        name: str | None = None,
        profile: str | None = None,
    ) -> tuple[Party, str]:
        """Register a peer and return its one-time token A (only its hash is stored)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if len(country_code) != 2 or len(party_id) != 3:
            raise ValueError("country code has 2 characters and party id 3 (OCPI CiString)")
        if profile is not None and profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}")
        token_a = new_token()
        party = Party(
            role=role,
            country_code=country_code.upper(),
            party_id=party_id.upper(),
            name=name,
            profile=profile,
            token_a_hash=token_hash(token_a),
            endpoints={},
            state="PENDING",
            created_at=utcnow(),
        )
        try:
            async with self._sessions.begin() as s:
                s.add(party)
        except IntegrityError as exc:
            raise PartyExists(
                f"a {role} party {country_code}/{party_id} is already registered"
            ) from exc
        return party, token_a

    async def all(self) -> list[Party]:
        async with self._sessions() as s:
            return list(await s.scalars(select(Party).order_by(Party.id)))

    async def by_token(self, candidates: list[str]) -> Caller | None:
        """The caller of a request. Every OCPI request asks, so answers are kept a few seconds;
        a change made through this process (register, unregister) clears them at once."""
        key = tuple(candidates)
        cached = self._callers.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        return await self._lookups.run(key, lambda: self._lookup_and_keep(key, self._generation))

    async def _lookup_and_keep(self, key: tuple[str, ...], generation: int) -> Caller | None:
        caller = await self._lookup(list(key))
        if caller is not None and generation == self._generation:
            if len(self._callers) > 10_000:
                self._callers.clear()
            self._callers[key] = (time.monotonic() + CALLER_CACHE_SECONDS, caller)
        return caller

    def _forget(self) -> None:
        self._generation += 1
        self._callers.clear()
        self._lookups.forget()
        self.cache.clear()

    async def _lookup(self, candidates: list[str]) -> Caller | None:
        hashes = {token_hash(c): c for c in candidates}
        if not hashes:
            return None
        async with self._sessions() as s:
            party = await s.scalar(
                select(Party).where(
                    or_(Party.token_a_hash.in_(hashes), Party.token_c_hash.in_(hashes))
                )
            )
        if party is None:
            return None
        if party.token_c_hash in hashes:
            return Caller(party, hashes[party.token_c_hash], with_token_a=False)
        assert party.token_a_hash is not None
        return Caller(party, hashes[party.token_a_hash], with_token_a=True)

    async def register(
        self,
        party_pk: int,
        *,
        token_b: str,
        versions_url: str,
        version: str,
        endpoints: dict[str, str],
        business_details: dict[str, Any] | None,
    ) -> str:
        """Store what the handshake learnt, void token A and the old token C; return a new C."""
        token_c = new_token()
        self._forget()
        async with self._sessions.begin() as s:
            party = await s.get(Party, party_pk)
            assert party is not None
            party.token_b = token_b
            party.versions_url = versions_url
            party.ocpi_version = version
            party.endpoints = endpoints
            party.business_details = business_details
            party.token_a_hash = None
            party.token_c_hash = token_hash(token_c)
            party.state = "REGISTERED"
            party.registered_at = utcnow()
        self._forget()  # what was looked up while the change was being written is stale too
        return token_c

    async def unregister(self, party_pk: int) -> None:
        self._forget()
        async with self._sessions.begin() as s:
            party = await s.get(Party, party_pk)
            assert party is not None
            party.token_c_hash = None
            party.token_b = None
            party.state = "UNREGISTERED"
        self._forget()
