"""The CPOs and hubs we connected to as an eMSP, in SQL (the PeerStore of
service/emsp/store_ports.py)."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chargegate.service.emsp.records import Connected, NewCredentials, Peer

from .emsp_rows import as_record
from .models import EmspPeer


class EmspPeersSql:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add_pending(
        self,
        *,
        token_b_hash: str,
        versions_url: str,
        profile: str | None,
        name: str | None,
        now: datetime,
    ) -> int:
        async with self._sessions.begin() as s:
            pending = EmspPeer(
                state="CONNECTING",
                token_b_hash=token_b_hash,
                versions_url=versions_url,
                profile=profile,
                name=name,
                roles=[],
                endpoints={},
                created_at=now,
            )
            s.add(pending)
        return pending.id

    async def delete(self, peer_id: int) -> None:
        async with self._sessions.begin() as s:
            row = await s.get(EmspPeer, peer_id)
            if row is not None:
                await s.delete(row)

    async def connected(self, pending_id: int, connected: Connected) -> Peer:
        async with self._sessions.begin() as s:
            pending = await s.get(EmspPeer, pending_id)
            assert pending is not None
            known = await s.scalar(
                select(EmspPeer).where(
                    EmspPeer.country_code == connected.country_code,
                    EmspPeer.party_id == connected.party_id,
                    EmspPeer.id != pending_id,
                )
            )
            peer = pending
            if known is not None:
                known.name = pending.name or known.name
                known.profile = pending.profile or known.profile
                known.versions_url = pending.versions_url
                await s.delete(pending)
                await s.flush()  # the token B hash is unique: free it before moving it
                peer = known
            for field in dataclasses.fields(connected):
                setattr(peer, field.name, getattr(connected, field.name))
            peer.state = "CONNECTED"
        return as_record(Peer, peer)

    async def new_credentials(self, peer_id: int, credentials: NewCredentials) -> None:
        async with self._sessions.begin() as s:
            peer = await s.get(EmspPeer, peer_id)
            assert peer is not None
            for field in dataclasses.fields(credentials):
                setattr(peer, field.name, getattr(credentials, field.name))

    async def unregister(self, peer_id: int) -> None:
        async with self._sessions.begin() as s:
            peer = await s.get(EmspPeer, peer_id)
            assert peer is not None
            peer.token_b_hash = None
            peer.token_c = None
            peer.state = "UNREGISTERED"

    async def all(self) -> list[Peer]:
        async with self._sessions() as s:
            rows = await s.scalars(select(EmspPeer).order_by(EmspPeer.id))
            return [as_record(Peer, row) for row in rows]

    async def by_token_hash(self, hashes: list[str]) -> Peer | None:
        async with self._sessions() as s:
            row = await s.scalar(select(EmspPeer).where(EmspPeer.token_b_hash.in_(hashes)))
            return as_record(Peer, row) if row is not None else None

    async def get(self, peer_id: int) -> Peer | None:
        async with self._sessions() as s:
            row = await s.get(EmspPeer, peer_id)
            return as_record(Peer, row) if row is not None else None

    async def by_party(self, country_code: str, party_id: str) -> Peer | None:
        async with self._sessions() as s:
            row = await s.scalar(
                select(EmspPeer).where(
                    EmspPeer.country_code == country_code, EmspPeer.party_id == party_id
                )
            )
            return as_record(Peer, row) if row is not None else None
