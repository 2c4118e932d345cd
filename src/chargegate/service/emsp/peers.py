"""CPOs and hubs we connect to as an eMSP: the handshake we start, lookup by the token we issued,
updates the peer sends us, and naming a peer in the API (`NL-CGW` or its number)."""

from __future__ import annotations

from chargegate.domain.clock import utcnow
from chargegate.domain.emsp_commands import EmspRequestError
from chargegate.domain.tokens import new_token, token_hash
from chargegate.settings import Settings

from .ports import CpoHandshake, Registration, TheirCredentials
from .records import Connected, NewCredentials, Peer
from .store_ports import PeerStore

PROFILES = ("gireve",)
CONNECTED = "CONNECTED"


def peer_name(peer: Peer) -> str:
    """How the API and CLI name a peer: `NL-CGW`, or `#7` before its identity is known."""
    if peer.country_code and peer.party_id:
        return f"{peer.country_code}-{peer.party_id}"
    return f"#{peer.id}"


class EmspPeers:
    def __init__(self, settings: Settings, store: PeerStore, handshake: CpoHandshake) -> None:
        self._settings = settings
        self._store = store
        self._handshake = handshake

    async def connect(
        self,
        versions_url: str,
        token_a: str,
        *,
        profile: str | None = None,
        name: str | None = None,
        version: str | None = None,
    ) -> Peer:
        """Register with a CPO as the initiating party. Our own versions endpoint must be
        reachable at the public URL meanwhile: the CPO calls it with the token B made here.
        `version` pins the OCPI version; by default the newest both sides list. Raises
        PeerApiError saying which call failed; nothing is kept then."""
        if profile is not None and profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}")
        token_b = new_token()
        pending_id = await self._store.add_pending(
            token_b_hash=token_hash(token_b),
            versions_url=versions_url,
            profile=profile,
            name=name,
            now=utcnow(),
        )
        try:
            registration = await self._handshake.register(
                versions_url, token_a, token_b, version=version
            )
        except Exception:
            await self._store.delete(pending_id)
            raise
        return await self._store.connected(pending_id, _connected(token_b, registration))

    async def update_from_peer(self, peer_id: int, version: str, theirs: TheirCredentials) -> str:
        """The peer PUT new credentials: read its endpoints with its new token, then hand it a
        new token B (credentials module, PUT). Raises PeerApiError when its API is unusable."""
        endpoints, plain = await self._handshake.endpoints(theirs.url, theirs.token, version)
        token_b = new_token()
        await self._store.new_credentials(
            peer_id,
            NewCredentials(
                token_c=theirs.token,
                token_b_hash=token_hash(token_b),
                versions_url=theirs.url,
                ocpi_version=version,
                plain_token=plain,
                endpoints=endpoints,
                business_details=theirs.primary().business_details,
            ),
        )
        return token_b

    async def unregister(self, peer_id: int) -> None:
        await self._store.unregister(peer_id)

    async def all(self) -> list[Peer]:
        return await self._store.all()

    async def by_token(self, candidates: list[str]) -> Peer | None:
        hashes = [token_hash(c) for c in candidates]
        if not hashes:
            return None
        return await self._store.by_token_hash(hashes)

    async def find(self, ref: str, *, connected: bool = True) -> Peer:
        """The peer named `NL-CGW` (also `NL*CGW`, `NLCGW`) or by its number; with
        `connected`, only one we can send to."""
        peer: Peer | None
        # ASCII digits only ("¹".isdigit() too) and no more than a 64-bit key holds.
        if ref.isascii() and ref.isdigit() and len(ref) <= 18:
            peer = await self._store.get(int(ref))
        else:
            code = ref.replace("-", "").replace("*", "").upper()
            peer = await self._store.by_party(code[:2], code[2:])
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


def _connected(token_b: str, registration: Registration) -> Connected:
    """What to keep of a completed handshake."""
    theirs = registration.theirs
    identity = theirs.primary()
    return Connected(
        country_code=identity.country_code,
        party_id=identity.party_id,
        role=identity.role,
        roles=[
            {"role": i.role, "country_code": i.country_code, "party_id": i.party_id}
            for i in theirs.identities
        ],
        business_details=identity.business_details,
        token_b_hash=token_hash(token_b),
        token_c=theirs.token,
        plain_token=registration.plain_token,
        ocpi_version=registration.version,
        endpoints=registration.endpoints,
        connected_at=utcnow(),
    )
