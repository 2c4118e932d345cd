"""The service's StationEventStore (service/station_events.py): what station-initiated
messages change in stations, EVSEs, sessions and reservations, each call one transaction, with
the Session/CDR pushes and results they owe a peer queued in it (store/peer_push_sql.py)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chargegate.domain.clock import utcnow
from chargegate.domain.commands import CommandResultType, CommandType
from chargegate.service.outbox import outbox_values
from chargegate.service.ports import PeerWire
from chargegate.service.station_events import MeterSample, TransactionStart, kwh_between

from . import peer_push_sql, station_sql
from .command_sql import insert_outbox
from .models import ChargingSession, Command, Party, Reservation
from .remote_request_store import store_configuration
from .units import Units, run_in_session

# A START_SESSION whose outcome was one of these may still be the origin of a transaction:
# a station can start after we reported TIMEOUT (docs/decisions.md, ocpi/ocpi issue 475).
_LINKABLE_RESULTS = (CommandResultType.ACCEPTED.value, CommandResultType.TIMEOUT.value)


class SqlStationEventStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        units: Units,
        wire: PeerWire,
        *,
        session_link_window: float,
        result_horizon: float,
    ) -> None:
        """`session_link_window`: how far back a START_SESSION may be the origin of a
        transaction; `result_horizon`: how long a CANCELED_RESERVATION result is tried."""
        self._sessions = sessions
        self._units = units
        self._wire = wire
        self._link_window = session_link_window
        self._result_horizon = result_horizon

    # ---- stations and EVSEs (units) ----------------------------------------------------------

    async def station_booted(
        self, station_id: str, ocpp_version: str, identity: dict[str, str | None]
    ) -> None:
        await self._units.run(
            station_sql.station_booted, station_id, ocpp_version, identity, utcnow()
        )

    async def station_connected(self, station_id: str, ocpp_version: str) -> None:
        await self._units.run(station_sql.station_connected, station_id, ocpp_version, utcnow())

    async def connector_status(
        self, station_id: str, connector_id: int, status: str, error_code: str | None
    ) -> None:
        await self._units.run(
            station_sql.connector_status, station_id, connector_id, status, error_code, utcnow()
        )

    # ---- transactions ------------------------------------------------------------------------

    async def transaction_started(self, start: TransactionStart) -> tuple[str, bool]:
        """(the OCPP transaction id, whether rows were queued); a repeated StartTransaction
        (same station, connector, tag, time) gets the same id back and queues nothing."""
        now = utcnow()
        async with self._sessions.begin() as s:
            existing = await s.scalar(
                select(ChargingSession).where(
                    ChargingSession.station_id == start.station_id,
                    ChargingSession.connector_id == start.connector_id,
                    ChargingSession.id_tag == start.id_tag,
                    ChargingSession.start_date_time == start.timestamp,
                )
            )
            if existing is not None and existing.transaction_id is not None:
                return existing.transaction_id, False
            origin = await self._origin(s, start, now)
            reserved = await self._reserved_session(s, start.station_id, start.reservation_id)
            if reserved is not None:
                # The reservation's Session (RESERVATION) becomes the charging one.
                reserved.connector_id = start.connector_id
                reserved.transaction_id = start.transaction_id
                reserved.meter_start = reserved.meter_last = start.meter_start
                reserved.status = "ACTIVE"
                reserved.start_date_time = start.timestamp
                reserved.last_updated = now
                await s.flush()
                if reserved.transaction_id is None:
                    reserved.transaction_id = str(reserved.pk)
                await self._consume_reservation(s, start.station_id, start.reservation_id)  # type: ignore[arg-type]
                await self._push_session(s, reserved)
                return reserved.transaction_id, True
            session = ChargingSession(
                id=uuid.uuid4().hex[:24],
                station_id=start.station_id,
                connector_id=start.connector_id,
                transaction_id=start.transaction_id,
                id_tag=start.id_tag,
                meter_start=start.meter_start,
                meter_last=start.meter_start,
                kwh=0.0,
                status="ACTIVE",
                start_date_time=start.timestamp,
                last_updated=now,
                auth_method="AUTH_REQUEST",
            )
            if origin is not None:
                session.party_id = origin.party_id
                session.command_id = origin.id
                session.token = origin.request.get("token")
                session.authorization_reference = origin.authorization_reference
                session.auth_method = "COMMAND"
            s.add(session)
            await s.flush()
            if session.transaction_id is None:
                session.transaction_id = str(session.pk)
            if start.reservation_id is not None:
                await self._consume_reservation(s, start.station_id, start.reservation_id)
            await self._push_session(s, session)
            tx_id = session.transaction_id
        return tx_id, True

    async def transaction_stopped(
        self,
        station_id: str,
        *,
        transaction_id: str,
        meter_stop: int | None,
        timestamp: datetime,
        reason: str | None,
    ) -> str:
        """ "STOPPED", or why nothing changed: "UNKNOWN" transaction, "DUPLICATE" stop."""
        async with self._sessions.begin() as s:
            session = await self._session_of(s, station_id, transaction_id)
            if session is None:
                return "UNKNOWN"
            if session.status == "COMPLETED":
                return "DUPLICATE"
            if meter_stop is not None:
                session.meter_last = meter_stop
            session.kwh = kwh_between(session.meter_start, session.meter_last)
            session.end_date_time = timestamp
            session.stop_reason = reason
            session.status = "COMPLETED"
            session.last_updated = utcnow()
            await self._push_session(s, session)
            await run_in_session(s, peer_push_sql.queue_cdr, self._wire, session)
        return "STOPPED"

    async def meter_values(self, station_id: str, transaction_id: str, sample: MeterSample) -> None:
        async with self._sessions.begin() as s:
            session = await self._session_of(s, station_id, transaction_id)
            if session is None or session.status != "ACTIVE":
                return
            session.meter_last = sample.wh
            session.kwh = kwh_between(session.meter_start, sample.wh)
            session.last_updated = utcnow()

    async def knows_transaction(self, station_id: str, transaction_id: str) -> bool:
        async with self._sessions() as s:
            return await self._session_of(s, station_id, transaction_id) is not None

    # ---- reservations ------------------------------------------------------------------------

    async def reservation_ended(self, station_id: str, ocpp_id: int, *, removed: bool) -> bool:
        """Ends an ACTIVE reservation (EXPIRED, or CANCELLED when removed); True when that
        queued a result for the peer."""
        async with self._sessions.begin() as s:
            reservation = await s.scalar(
                select(Reservation).where(
                    Reservation.station_id == station_id,
                    Reservation.ocpp_reservation_id == ocpp_id,
                    Reservation.status == "ACTIVE",
                )
            )
            if reservation is None:
                return False
            if not removed:
                reservation.status = "EXPIRED"
                await self._end_reservation_session(s, reservation)
                return False
            await self._cancel_reservation(s, reservation, "the charge point removed it")
        return True

    async def cancel_reservations_at(
        self, station_id: str, connector_id: int | None, why: str
    ) -> int:
        """Cancels the ACTIVE reservations at a station (or one connector); how many."""
        query = select(Reservation).where(
            Reservation.station_id == station_id, Reservation.status == "ACTIVE"
        )
        if connector_id is not None:
            query = query.where(Reservation.connector_id == connector_id)
        async with self._sessions.begin() as s:
            reservations = list(await s.scalars(query))
            for reservation in reservations:
                await self._cancel_reservation(s, reservation, why)
        return len(reservations)

    async def expire_reservations(self, now: datetime) -> int:
        """Ends the ACTIVE reservations past their expiry_date; how many."""
        async with self._sessions.begin() as s:
            expired = list(
                await s.scalars(
                    select(Reservation).where(
                        Reservation.status == "ACTIVE", Reservation.expiry_date < now
                    )
                )
            )
            for reservation in expired:
                reservation.status = "EXPIRED"
                await self._end_reservation_session(s, reservation)
        return len(expired)

    async def configuration_reported(
        self, station_id: str, entries: list[dict[str, object]]
    ) -> None:
        await store_configuration(self._sessions, station_id, entries)

    # ---- helpers -----------------------------------------------------------------------------

    async def _push_session(self, s: AsyncSession, session: ChargingSession) -> None:
        await s.flush()
        await run_in_session(s, peer_push_sql.queue_session, self._wire, session)

    async def _end_reservation_session(self, s: AsyncSession, reservation: Reservation) -> None:
        """A reservation that ends unused ends its RESERVATION Session too (no energy, no CDR:
        there is no tariff for unused reservations yet)."""
        if reservation.session_pk is None:
            return
        session = await s.get(ChargingSession, reservation.session_pk)
        if session is None or session.status != "RESERVATION":
            return
        now = utcnow()
        session.status = "COMPLETED"
        session.end_date_time = now
        session.last_updated = now
        await self._push_session(s, session)

    async def _cancel_reservation(
        self, s: AsyncSession, reservation: Reservation, why: str
    ) -> None:
        """CANCELED_RESERVATION at the RESERVE_NOW's response_url (2.1.1 has no such result)."""
        reservation.status = "CANCELLED"
        await self._end_reservation_session(s, reservation)
        party = await s.get(Party, reservation.party_id)
        command = await s.get(Command, reservation.command_id) if reservation.command_id else None
        if (
            party is None
            or command is None
            or command.ocpi_version != "2.2.1"
            or reservation.response_url is None
        ):
            return
        values = outbox_values(
            kind="COMMAND_RESULT",
            party_id=party.id,
            party_version=party.ocpi_version,
            method="POST",
            url=reservation.response_url,
            body=self._wire.command_result(
                "2.2.1", CommandResultType.CANCELED_RESERVATION, f"reservation cancelled: {why}"
            ),
            correlation_id=command.correlation_id,
            command_id=command.id,
            horizon=self._result_horizon,
        )
        await s.flush()
        await run_in_session(s, insert_outbox, values)

    async def _session_of(
        self, s: AsyncSession, station_id: str, transaction_id: str
    ) -> ChargingSession | None:
        return await s.scalar(
            select(ChargingSession).where(
                ChargingSession.station_id == station_id,
                ChargingSession.transaction_id == transaction_id,
            )
        )

    async def _origin(
        self, s: AsyncSession, start: TransactionStart, now: datetime
    ) -> Command | None:
        """The command this transaction answers: by remoteStartId (2.0.1), the reservation's,
        or a recent START_SESSION for the same token on this station."""
        if start.remote_start_id is not None:
            # The newest: ids repeat over time (domain/ids.py), an old command's must not win.
            by_id = await s.scalar(
                select(Command)
                .where(
                    Command.station_id == start.station_id,
                    Command.remote_start_id == start.remote_start_id,
                )
                .order_by(Command.created_at.desc())
                .limit(1)
            )
            if by_id is not None:
                return by_id
        if start.reservation_id is not None:
            reservation = await s.scalar(
                select(Reservation).where(
                    Reservation.station_id == start.station_id,
                    Reservation.ocpp_reservation_id == start.reservation_id,
                )
            )
            if reservation is not None and reservation.command_id is not None:
                return await s.get(Command, reservation.command_id)
        since = now - timedelta(seconds=self._link_window)
        already_linked = select(ChargingSession.command_id).where(
            ChargingSession.command_id.is_not(None)
        )
        candidates = await s.scalars(
            select(Command)
            .where(
                Command.type == CommandType.START_SESSION.value,
                Command.station_id == start.station_id,
                Command.token_uid == start.id_tag,
                Command.created_at >= since,
                (Command.result.is_(None)) | (Command.result.in_(_LINKABLE_RESULTS)),
                Command.id.not_in(already_linked),
            )
            .order_by(Command.created_at.desc())
        )
        for command in candidates:
            if command.connector_id in (None, start.connector_id):
                return command
        return None

    async def _reserved_session(
        self, s: AsyncSession, station_id: str, reservation_id: int | None
    ) -> ChargingSession | None:
        if reservation_id is None:
            return None
        reservation = await s.scalar(
            select(Reservation).where(
                Reservation.station_id == station_id,
                Reservation.ocpp_reservation_id == reservation_id,
                Reservation.session_pk.is_not(None),
            )
        )
        if reservation is None:
            return None
        session = await s.get(ChargingSession, reservation.session_pk)
        return session if session is not None and session.status == "RESERVATION" else None

    async def _consume_reservation(self, s: AsyncSession, station_id: str, ocpp_id: int) -> None:
        reservation = await s.scalar(
            select(Reservation).where(
                Reservation.station_id == station_id, Reservation.ocpp_reservation_id == ocpp_id
            )
        )
        if reservation is not None:
            reservation.status = "USED"
