"""Peers: registration by the operator, lookup by token, the credentials handshake's state."""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from chargegate.domain.clock import utcnow
from chargegate.domain.tokens import new_token, token_hash

from .ports import PartyLoader, PartyRow
from .single_flight import SingleFlight

# How long a token's owner is remembered; another node's revocation takes effect within it.
CALLER_CACHE_SECONDS = 5.0

ROLES = ("EMSP", "CPO", "HUB", "NSP", "OTHER")
PROFILES = ("gireve",)


class PartyExists(Exception):
    pass


class PartyStore(Protocol):
    """Peers as the store keeps them (rows with the columns as attributes)."""

    async def add(self, values: dict[str, Any]) -> PartyRow:
        """Store a new peer; raises PartyExists for a role, country and party id taken."""

    async def all(self) -> Sequence[PartyRow]: ...

    async def get(self, party_pk: int) -> PartyRow | None: ...

    async def by_token_hash(self, hashes: Collection[str]) -> PartyRow | None:
        """The peer whose token A or token C has one of these hashes."""

    async def update(self, party_pk: int, values: dict[str, Any]) -> None: ...

    async def claim_token_a(self, party_pk: int, token_a_hash: str) -> bool:
        """Void the token A with this hash if it is still the party's; False if it is not
        (another handshake claimed it first)."""

    async def restore_token_a(self, party_pk: int, token_a_hash: str) -> bool:
        """Give a claimed token A back, unless the party registered in the meantime."""


@dataclass(frozen=True, slots=True)
class Caller:
    party: PartyRow
    token: str
    with_token_a: bool


class PartyCache:
    """Peers by id, for the hot path (every command result needs its peer's token and
    version), kept as long as callers are."""

    def __init__(self, loader: PartyLoader) -> None:
        self._loader = loader
        self._parties: dict[int, tuple[float, PartyRow]] = {}
        self._loads: SingleFlight[int, PartyRow | None] = SingleFlight()
        # Bumped by `clear`: a read that started before a registration change keeps nothing.
        self._generation = 0

    def peek(self, party_id: int) -> PartyRow | None:
        """The cached party, if it is still fresh; no database."""
        cached = self._parties.get(party_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        return None

    async def load(self, party_id: int) -> PartyRow | None:
        """The party; callers asking for one party at once share one read (when the entry
        expires under load, every result in flight asks)."""
        cached = self.peek(party_id)
        if cached is not None:
            return cached
        return await self._loads.run(party_id, lambda: self._load(party_id))

    async def _load(self, party_id: int) -> PartyRow | None:
        generation = self._generation
        party = await self._loader(party_id)
        if party is not None and generation == self._generation:
            if len(self._parties) > 10_000:
                self._parties.clear()
            self._parties[party_id] = (time.monotonic() + CALLER_CACHE_SECONDS, party)
        return party

    def clear(self) -> None:
        self._generation += 1
        self._parties.clear()
        self._loads.forget()


class PartyService:
    def __init__(self, store: PartyStore) -> None:
        self._store = store
        self._callers: dict[tuple[str, ...], tuple[float, Caller]] = {}
        self._lookups: SingleFlight[tuple[str, ...], Caller | None] = SingleFlight()
        # Bumped on every registration change: a lookup that started before one keeps nothing.
        self._generation = 0
        self.cache = PartyCache(store.get)

    async def add(
        self,
        *,
        role: str,
        country_code: str,
        party_id: str,
        name: str | None = None,
        profile: str | None = None,
    ) -> tuple[PartyRow, str]:
        """Register a peer and return its one-time token A (only its hash is stored)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if len(country_code) != 2 or len(party_id) != 3:
            raise ValueError("country code has 2 characters and party id 3 (OCPI CiString)")
        if profile is not None and profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}")
        token_a = new_token()
        party = await self._store.add(
            dict(
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
        )
        return party, token_a

    async def all(self) -> Sequence[PartyRow]:
        return await self._store.all()

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
        party = await self._store.by_token_hash(hashes)
        if party is None:
            return None
        if party.token_c_hash in hashes:
            return Caller(party, hashes[party.token_c_hash], with_token_a=False)
        assert party.token_a_hash is not None
        return Caller(party, hashes[party.token_a_hash], with_token_a=True)

    async def claim_token_a(self, party_pk: int, token_a: str) -> bool:
        """Before a registration calls the peer: only one handshake per token A gets past
        this (docs/security.md#registration-tokens)."""
        self._forget()
        claimed = await self._store.claim_token_a(party_pk, token_hash(token_a))
        self._forget()
        return claimed

    async def restore_token_a(self, party_pk: int, token_a: str) -> None:
        """After a registration that failed before it stored anything: the peer may retry."""
        self._forget()
        await self._store.restore_token_a(party_pk, token_hash(token_a))
        self._forget()

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
        await self._store.update(
            party_pk,
            dict(
                token_b=token_b,
                versions_url=versions_url,
                ocpi_version=version,
                endpoints=endpoints,
                business_details=business_details,
                token_a_hash=None,
                token_c_hash=token_hash(token_c),
                state="REGISTERED",
                registered_at=utcnow(),
            ),
        )
        self._forget()  # what was looked up while the change was being written is stale too
        return token_c

    async def unregister(self, party_pk: int) -> None:
        self._forget()
        await self._store.update(
            party_pk, dict(token_c_hash=None, token_b=None, state="UNREGISTERED")
        )
        self._forget()
