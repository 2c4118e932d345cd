"""CPOs and hubs we connect to as an eMSP: the handshake we start, lookup by the token we issued,
updates the peer sends us, and naming a peer in the API (`NL-CGW` or its number)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chargegate.domain.clock import utcnow
from chargegate.domain.emsp_commands import EmspRequestError
from chargegate.domain.tokens import new_token, token_hash
from chargegate.settings import Settings
from chargegate.store.models import EmspPeer

from .ports import CpoHandshake, Registration, TheirCredentials

PROFILES = ("gireve",)
CONNECTED = "CONNECTED"


def peer_name(peer: EmspPeer) -> str:
    """How the API and CLI name a peer: `NL-CGW`, or `#7` before its identity is known."""
    if peer.country_code and peer.party_id:
        return f"{peer.country_code}-{peer.party_id}"
    return f"#{peer.id}"


class EmspPeers:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        handshake: CpoHandshake,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._handshake = handshake

    async def connect(
        self,
        versions_url: str,
        token_a: str,
        *,
        profile: str | None = None,
        name: str | None = None,
        version: str | None = None,
    ) -> EmspPeer:
        """Register with a CPO as the initiating party. Our own versions endpoint must be
        reachable at the public URL meanwhile: the CPO calls it with the token B made here.
        `version` pins the OCPI version; by default the newest both sides list. Raises
        PeerApiError saying which call failed; nothing is kept then."""
        if profile is not None and profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}")
        token_b = new_token()
        async with self._sessions.begin() as s:
            pending = EmspPeer(
                state="CONNECTING",
                token_b_hash=token_hash(token_b),
                versions_url=versions_url,
                profile=profile,
                name=name,
                roles=[],
                endpoints={},
                created_at=utcnow(),
            )
            s.add(pending)
        try:
            registration = await self._handshake.register(
                versions_url, token_a, token_b, version=version
            )
        except Exception:
            async with self._sessions.begin() as s:
                row = await s.get(EmspPeer, pending.id)
                if row is not None:
                    await s.delete(row)
            raise
        return await self._store(pending.id, token_b, registration, profile)

    async def _store(
        self,
        pending_id: int,
        token_b: str,
        registration: Registration,
        profile: str | None,
    ) -> EmspPeer:
        """Keep what the handshake learnt. Connecting again to a peer we know updates its row,
        so its commands, sessions and CDRs stay together."""
        theirs = registration.theirs
        identity = theirs.primary()
        async with self._sessions.begin() as s:
            pending = await s.get(EmspPeer, pending_id)
            assert pending is not None
            known = await s.scalar(
                select(EmspPeer).where(
                    EmspPeer.country_code == identity.country_code,
                    EmspPeer.party_id == identity.party_id,
                    EmspPeer.id != pending_id,
                )
            )
            peer = pending
            if known is not None:
                known.name = pending.name or known.name
                known.profile = profile or known.profile
                known.versions_url = pending.versions_url
                await s.delete(pending)
                await s.flush()  # the token B hash is unique: free it before moving it
                peer = known
            peer.country_code = identity.country_code
            peer.party_id = identity.party_id
            peer.role = identity.role
            peer.roles = [
                {"role": i.role, "country_code": i.country_code, "party_id": i.party_id}
                for i in theirs.identities
            ]
            peer.business_details = identity.business_details
            peer.token_b_hash = token_hash(token_b)
            peer.token_c = theirs.token
            peer.plain_token = registration.plain_token
            peer.ocpi_version = registration.version
            peer.endpoints = registration.endpoints
            peer.state = CONNECTED
            peer.connected_at = utcnow()
        return peer

    async def update_from_peer(self, peer_id: int, version: str, theirs: TheirCredentials) -> str:
        """The peer PUT new credentials: read its endpoints with its new token, then hand it a
        new token B (credentials module, PUT). Raises PeerApiError when its API is unusable."""
        endpoints, plain = await self._handshake.endpoints(theirs.url, theirs.token, version)
        token_b = new_token()
        identity = theirs.primary()
        async with self._sessions.begin() as s:
            peer = await s.get(EmspPeer, peer_id)
            assert peer is not None
            peer.token_c = theirs.token
            peer.token_b_hash = token_hash(token_b)
            peer.versions_url = theirs.url
            peer.ocpi_version = version
            peer.plain_token = plain
            peer.endpoints = endpoints
            peer.business_details = identity.business_details
        return token_b

    async def unregister(self, peer_id: int) -> None:
        async with self._sessions.begin() as s:
            peer = await s.get(EmspPeer, peer_id)
            assert peer is not None
            peer.token_b_hash = None
            peer.token_c = None
            peer.state = "UNREGISTERED"

    async def all(self) -> list[EmspPeer]:
        async with self._sessions() as s:
            return list(await s.scalars(select(EmspPeer).order_by(EmspPeer.id)))

    async def by_token(self, candidates: list[str]) -> EmspPeer | None:
        hashes = [token_hash(c) for c in candidates]
        if not hashes:
            return None
        async with self._sessions() as s:
            peer: EmspPeer | None = await s.scalar(
                select(EmspPeer).where(EmspPeer.token_b_hash.in_(hashes))
            )
            return peer

    async def find(self, s: AsyncSession, ref: str, *, connected: bool = True) -> EmspPeer:
        """The peer named `NL-CGW` (also `NL*CGW`, `NLCGW`) or by its number; with
        `connected`, only one we can send to."""
        peer: EmspPeer | None
        if ref.isdigit():
            peer = await s.get(EmspPeer, int(ref))
        else:
            code = ref.replace("-", "").replace("*", "").upper()
            peer = await s.scalar(
                select(EmspPeer).where(
                    EmspPeer.country_code == code[:2], EmspPeer.party_id == code[2:]
                )
            )
        if peer is None:
            raise EmspRequestError(
                "not_found", f"no peer {ref!r}; `chargegate peer list` shows the connected ones"
            )
        if connected and (peer.state != CONNECTED or not peer.token_c or not peer.ocpi_version):
            raise EmspRequestError(
                "conflict",
                f"peer {peer_name(peer)} is {peer.state}; connect again with "
                "`chargegate peer connect`",
            )
        return peer
