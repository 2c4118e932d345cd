"""Sessions and CDRs owed to the eMSP that started them: outbox rows, FIFO per peer (GIREVE),
written by the unit (store/units.py) that changed the session, so they commit with it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import bindparam, insert, select

from chargegate.domain.clock import utcnow
from chargegate.service.outbox import outbox_values
from chargegate.service.ports import PeerWire, SessionView

from .command_sql import insert_outbox, parties
from .models import Cdr, ChargingSession, Connector, Station, table_of
from .units import Executor, first

stations = table_of(Station)
connectors = table_of(Connector)
sessions = table_of(ChargingSession)
cdrs = table_of(Cdr)

# Not token_b: a push never needs it here, and opening it is a decryption per push.
_PARTY = select(*(c for c in parties.c if c.name != "token_b")).where(
    parties.c.id == bindparam("party_id")
)
_STATION = select(stations).where(stations.c.id == bindparam("station_id"))
_CONNECTORS = select(connectors).where(connectors.c.station_id == bindparam("station_id"))
_CDR_OF_SESSION = select(cdrs.c.id).where(cdrs.c.session_pk == bindparam("session_pk"))
_INSERT_CDR = insert(cdrs)

# The wire's session and cdr renderers: (version, what to render) -> body.
Render = Callable[[str, SessionView], dict[str, Any]]


def queue_session(x: Executor, wire: PeerWire, session: Any) -> None:
    """PUT the session as it is now to the peer's sessions receiver, if it has one."""
    party = registered_party(x, session.party_id)
    if party is None or party.ocpi_version is None:
        return
    url = wire.session_push_url(party, session)
    if url is None:
        return
    _queue(x, party, session, "SESSION", "PUT", url, wire.session)


def queue_cdr(x: Executor, wire: PeerWire, session: Any) -> None:
    """Create the session's CDR once (it is keyed by the session, so a repeated stop finds it)
    and POST it to the peer's cdrs receiver."""
    if first(x, _CDR_OF_SESSION, {"session_pk": session.pk}) is not None:
        return
    x.rows(
        _INSERT_CDR,
        {
            "id": session.id,
            "session_pk": session.pk,
            "party_id": session.party_id,
            "created_at": utcnow(),
        },
    )
    party = registered_party(x, session.party_id)
    if party is None or party.ocpi_version is None:
        return
    url = (party.endpoints or {}).get("cdrs")
    if not url:
        return
    _queue(x, party, session, "CDR", "POST", url, wire.cdr)


def station_and_connectors(x: Executor, station_id: str) -> tuple[Any, list[Any]]:
    station = first(x, _STATION, {"station_id": station_id})
    assert station is not None
    return station, x.rows(_CONNECTORS, {"station_id": station_id})


def registered_party(x: Executor, party_id: int | None) -> Any | None:
    if party_id is None:
        return None
    party = first(x, _PARTY, {"party_id": party_id})
    return party if party is not None and party.state == "REGISTERED" else None


def _queue(
    x: Executor, party: Any, session: Any, kind: str, method: str, url: str, render: Render
) -> None:
    """Queue a document about `session`, rendered from its station as it is now, FIFO behind
    what this peer is already owed."""
    station, station_connectors = station_and_connectors(x, session.station_id)
    insert_outbox(
        x,
        outbox_values(
            kind=kind,
            party_id=party.id,
            party_version=party.ocpi_version,
            method=method,
            url=url,
            body=render(
                party.ocpi_version, SessionView(session, station, station_connectors, party)
            ),
            correlation_id=session.command_id,
            fifo=True,
        ),
    )
