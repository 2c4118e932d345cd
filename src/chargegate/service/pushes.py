"""Sessions and CDRs owed to the eMSP that started them: store-and-forward outbox rows, FIFO
per peer (GIREVE), written in the caller's transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from chargegate.domain.clock import utcnow
from chargegate.store.models import Cdr, ChargingSession, Connector, Party, Station

from .outbox import enqueue, outbox_values
from .ports import PeerWire


class PeerPushes:
    def __init__(self, wire: PeerWire) -> None:
        self._wire = wire

    async def session(self, s: AsyncSession, session: ChargingSession) -> None:
        """PUT the session as it is now to the peer's sessions receiver, if it has one."""
        party = await _registered_party(s, session.party_id)
        if party is None or party.ocpi_version is None:
            return
        url = self._wire.session_push_url(party, session)
        if url is None:
            return
        await _queue(s, party, session, "SESSION", "PUT", url, self._wire.session)

    async def cdr(self, s: AsyncSession, session: ChargingSession) -> None:
        """Create the session's CDR once (it is keyed by the session, so a repeated stop finds
        it) and POST it to the peer's cdrs receiver."""
        if await s.scalar(select(Cdr.id).where(Cdr.session_pk == session.pk)) is not None:
            return
        s.add(
            Cdr(
                id=session.id, session_pk=session.pk, party_id=session.party_id, created_at=utcnow()
            )
        )
        party = await _registered_party(s, session.party_id)
        if party is None or party.ocpi_version is None:
            return
        url = (party.endpoints or {}).get("cdrs")
        if not url:
            return
        await _queue(s, party, session, "CDR", "POST", url, self._wire.cdr)


# The wire's session and cdr renderers: (version, session, station, connectors, party) -> body.
Render = Callable[[str, ChargingSession, Station, list[Connector], Party], dict[str, Any]]


async def _queue(
    s: AsyncSession,
    party: Party,
    session: ChargingSession,
    kind: str,
    method: str,
    url: str,
    render: Render,
) -> None:
    """Queue a document about `session`, rendered from its station as it is now, FIFO behind
    what this peer is already owed."""
    assert party.ocpi_version is not None
    station, connectors = await station_and_connectors(s, session.station_id)
    await enqueue(
        s,
        outbox_values(
            kind=kind,
            party_id=party.id,
            party_version=party.ocpi_version,
            method=method,
            url=url,
            body=render(party.ocpi_version, session, station, connectors, party),
            correlation_id=session.command_id,
            fifo=True,
        ),
    )


async def station_and_connectors(
    s: AsyncSession, station_id: str
) -> tuple[Station, list[Connector]]:
    station = await s.get(Station, station_id)
    assert station is not None
    connectors = list(await s.scalars(select(Connector).where(Connector.station_id == station_id)))
    return station, connectors


async def _registered_party(s: AsyncSession, party_id: int | None) -> Party | None:
    if party_id is None:
        return None
    party = await s.get(Party, party_id)
    return party if party is not None and party.state == "REGISTERED" else None
