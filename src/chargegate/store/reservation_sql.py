"""Reservations as RESERVE_NOW and CANCEL_RESERVATION write them, as units of work
(store/units.py): the reservation recorded with its command, and changed by the command's
outcome in the transaction that records the outcome (command_sql.decide's follow-up)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update

from chargegate.domain.clock import utcnow
from chargegate.service.ports import (
    PeerWire,
    ReservationFollows,
    ReservationToCancel,
    Reserving,
)

from . import peer_push_sql
from .command_sql import STATION_BY_ID, _cased, _match, charging_sessions, record_command
from .models import Reservation, table_of
from .units import Executor, atomic_alone, first

reservations = table_of(Reservation)

_NAMED = select(reservations.c.id, reservations.c.ocpp_reservation_id).where(
    reservations.c.party_id == bindparam("party_id"),
    reservations.c.location_id == bindparam("location_id"),
    reservations.c.reservation_id == bindparam("reservation_id"),
)
_NEXT_OCPP_ID = select(
    (func.coalesce(func.max(reservations.c.ocpp_reservation_id), 0) + 1).label("next_id")
).where(reservations.c.station_id == bindparam("station_id"))
# RETURNING given: PostgreSQL would otherwise add its own for the generated key.
_INSERT = insert(reservations).returning(reservations.c.id)
_RENEW = (
    update(reservations)
    .where(reservations.c.id == bindparam("row_id"))
    .values(
        connector_id=bindparam("new_connector_id"),
        expiry_date=bindparam("new_expiry_date"),
        status="REQUESTED",
        command_id=bindparam("new_command_id"),
        response_url=bindparam("new_response_url"),
    )
)
_LIVE = {
    ci: select(
        reservations.c.station_id,
        reservations.c.connector_id,
        reservations.c.ocpp_reservation_id,
    )
    .where(
        reservations.c.party_id == bindparam("party_id"),
        _match(reservations.c.reservation_id, ci, "reservation_id"),
        # Not IN (…): an expanding bind does not compile once (store/compiled_statement.py).
        or_(reservations.c.status == "REQUESTED", reservations.c.status == "ACTIVE"),
    )
    .limit(1)
    for ci in (False, True)
}
_OF_COMMAND = select(reservations).where(reservations.c.command_id == bindparam("command_id"))
_OF_PARTY = select(reservations.c.id).where(
    reservations.c.party_id == bindparam("party_id"),
    reservations.c.reservation_id == bindparam("reservation_id"),
)
_SET_STATUS = (
    update(reservations)
    .where(reservations.c.id == bindparam("row_id"))
    .values(status=bindparam("new_status"))
)
_SET_SESSION = (
    update(reservations)
    .where(reservations.c.id == bindparam("row_id"))
    .values(session_pk=bindparam("new_session_pk"))
)
_SESSION_BY_PK = select(charging_sessions).where(charging_sessions.c.pk == bindparam("pk"))
_MOVE_SESSION = (
    update(charging_sessions)
    .where(charging_sessions.c.pk == bindparam("pk"))
    .values(connector_id=bindparam("new_connector_id"), last_updated=bindparam("now"))
    .returning(*charging_sessions.c)
)
_INSERT_SESSION = insert(charging_sessions).returning(*charging_sessions.c)


def record_reserving(x: Executor, command: Mapping[str, Any], reserving: Reserving) -> int:
    """The RESERVE_NOW command and its reservation (REQUESTED) in one transaction; returns the
    OCPP reservation id: the one the same (party, location, reservation_id) already had, else
    the station's next."""
    named = first(
        x,
        _NAMED,
        {
            "party_id": reserving.party_id,
            "location_id": reserving.station_id,
            "reservation_id": reserving.reservation_id,
        },
    )
    if named is None:
        next_id = first(x, _NEXT_OCPP_ID, {"station_id": reserving.station_id})
        ocpp_id = int(next_id.next_id or 1) if next_id is not None else 1
        x.rows(
            _INSERT,
            {
                "party_id": reserving.party_id,
                "location_id": reserving.station_id,
                "reservation_id": reserving.reservation_id,
                "station_id": reserving.station_id,
                "connector_id": reserving.connector_id,
                "ocpp_reservation_id": ocpp_id,
                "expiry_date": reserving.expiry_date,
                "command_id": command["id"],
                "response_url": command["response_url"],
                "session_pk": None,
                "status": "REQUESTED",
                "created_at": utcnow(),
            },
        )
    else:
        ocpp_id = int(named.ocpp_reservation_id)
        x.rows(
            _RENEW,
            {
                "row_id": named.id,
                "new_connector_id": reserving.connector_id,
                "new_expiry_date": reserving.expiry_date,
                "new_command_id": command["id"],
                "new_response_url": command["response_url"],
            },
        )
    record_command(x, command)
    return ocpp_id


@atomic_alone  # reads only
def reservation_to_cancel(
    x: Executor, party_id: int, reservation_id: str, case_insensitive: bool
) -> ReservationToCancel | None:
    live = first(
        x,
        _LIVE[case_insensitive],
        {"party_id": party_id, "reservation_id": _cased(reservation_id, case_insensitive)},
    )
    if live is None:
        return None
    station = first(x, STATION_BY_ID, {"station_id": live.station_id})
    assert station is not None
    return ReservationToCancel(live.connector_id, live.ocpp_reservation_id, station)


def follow_outcome(x: Executor, command: Any, follows: ReservationFollows, wire: PeerWire) -> bool:
    """The reservation follows its command's outcome: RESERVE_NOW's own reservation, or the
    one CANCEL_RESERVATION names. True when that queued rows to send (a 2.2.1 Session)."""
    if not follows.by_command:
        if follows.status is None:
            return False
        named = first(
            x,
            _OF_PARTY,
            {
                "party_id": command.party_id,
                "reservation_id": command.request.get("reservation_id"),
            },
        )
        if named is not None:
            x.rows(_SET_STATUS, {"row_id": named.id, "new_status": follows.status})
        return False
    reservation = first(x, _OF_COMMAND, {"command_id": command.id})
    if reservation is None or follows.status is None:
        return False
    x.rows(_SET_STATUS, {"row_id": reservation.id, "new_status": follows.status})
    if follows.opens_session and command.ocpi_version == "2.2.1":
        _reservation_session(x, command, reservation, wire)
        return True
    return False


def _reservation_session(x: Executor, command: Any, reservation: Any, wire: PeerWire) -> None:
    """2.2.1: "A successful reservation will result in a new Session object being created by
    the CPO" (status RESERVATION). A replaced reservation keeps its Session."""
    now = utcnow()
    if reservation.session_pk is not None:
        existing = first(x, _SESSION_BY_PK, {"pk": reservation.session_pk})
        if existing is not None and existing.status == "RESERVATION":
            moved = first(
                x,
                _MOVE_SESSION,
                {"pk": existing.pk, "new_connector_id": reservation.connector_id, "now": now},
            )
            peer_push_sql.queue_session(x, wire, moved)
            return
    session = first(
        x,
        _INSERT_SESSION,
        {
            "id": uuid.uuid4().hex[:24],
            "station_id": reservation.station_id,
            "connector_id": reservation.connector_id,
            "transaction_id": None,
            "party_id": command.party_id,
            "command_id": command.id,
            "id_tag": command.token_uid or "",
            "token": command.request.get("token"),
            "auth_method": "COMMAND",
            "authorization_reference": command.authorization_reference,
            "meter_start": 0,
            "meter_last": 0,
            "kwh": 0.0,
            "status": "RESERVATION",
            "stop_reason": None,
            "start_date_time": now,
            "end_date_time": None,
            "last_updated": now,
        },
    )
    assert session is not None
    x.rows(_SET_SESSION, {"row_id": reservation.id, "new_session_pk": session.pk})
    peer_push_sql.queue_session(x, wire, session)
