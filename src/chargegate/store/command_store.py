"""The service's CommandStore (service/ports.py) over the units of store/command_sql.py and
store/reservation_sql.py: each call one unit, so one transaction (and on SQLite one share of a
group-committed trip)."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from chargegate.domain.evse import evse_status_of
from chargegate.service.outbox import OutboxRow
from chargegate.service.ports import (
    Decision,
    PeerWire,
    Recorded,
    ReservationFollows,
    ReservationToCancel,
    Reserving,
    ResultRow,
    SessionToStop,
    Target,
)

from . import command_sql, reservation_sql
from .units import Units


class SqlCommandStore:
    def __init__(self, units: Units, wire: PeerWire) -> None:
        """`wire` renders the Session a 2.2.1 reservation opens, inside the outcome's unit."""
        self._units = units
        self._wire = wire
        # PostgreSQL records an outcome without follow-up as one statement.
        self._at_once = units.modifying_with

    async def find_target(
        self, location_id: str, evse_uid: str | None, case_insensitive: bool
    ) -> Target:
        return await self._units.run(
            command_sql.find_target, location_id, evse_uid, case_insensitive
        )

    async def session_to_stop(
        self, session_id: str, case_insensitive: bool
    ) -> SessionToStop | None:
        return await self._units.run(command_sql.session_to_stop, session_id, case_insensitive)

    async def reservation_to_cancel(
        self, party_id: int, reservation_id: str, case_insensitive: bool
    ) -> ReservationToCancel | None:
        return await self._units.run(
            reservation_sql.reservation_to_cancel, party_id, reservation_id, case_insensitive
        )

    async def record(self, command: dict[str, Any]) -> None:
        await self._units.run(command_sql.record_command, command)

    async def record_reserving(self, command: dict[str, Any], reserving: Reserving) -> int:
        return await self._units.run(reservation_sql.record_reserving, command, reserving)

    async def record_outcome(
        self, decision: Decision, result: ResultRow, reservation: ReservationFollows | None
    ) -> Recorded | None:
        """One outcome, one way: the command moves from pending to its outcome, the
        reservation follows, the result's row is queued. Where nothing follows, PostgreSQL does
        it in one statement (command_sql.decide_at_once), which writes the same rows."""
        if reservation is None and self._at_once:
            template = command_sql.ResultTemplate(
                body_211=result.render("2.1.1"),
                body_221=result.render("2.2.1"),
                values=result.values,
            )
            decided = await self._units.run(command_sql.decide_at_once, decision, template)
        else:
            follow_up = (
                None
                if reservation is None
                else functools.partial(_follow_reservation, follows=reservation, wire=self._wire)
            )
            decided = await self._units.run(
                command_sql.decide, decision, functools.partial(_result_values, result), follow_up
            )
        if decided is None:
            return None
        return Recorded(
            OutboxRow(id=decided.outbox_id, **decided.outbox),
            decided.command.party_id,
            decided.queued_more,
        )

    async def expired(self, now: datetime) -> list[tuple[str, str]]:
        return await self._units.run(command_sql.expired, now)

    async def evse_status(self, station_id: str, connector_id: int) -> str | None:
        found = await self._units.run(command_sql.connector_status, station_id, connector_id)
        return None if found is None else evse_status_of(found[0])


def _result_values(result: ResultRow, command: Any, party_version: str | None) -> dict[str, Any]:
    """The result's row once its command is read: what `decide_at_once` takes from the
    command in SQL, taken here from the resolved row."""
    values = dict(result.values)
    values["party_id"] = command.party_id
    values["ocpi_version"] = party_version or "2.2.1"
    values["url"] = command.response_url
    values["body"] = result.render(command.ocpi_version)
    values["correlation_id"] = command.correlation_id
    values["command_id"] = command.id
    return values


def _follow_reservation(
    x: Any, command: Any, *, follows: ReservationFollows, wire: PeerWire
) -> bool:
    return reservation_sql.follow_outcome(x, command, follows, wire)
