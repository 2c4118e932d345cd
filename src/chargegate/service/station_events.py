"""Station-initiated events: boots, statuses, transactions → stations, EVSEs and Sessions."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chargegate.domain.clock import utcnow
from chargegate.domain.commands import CommandResultType, CommandType
from chargegate.settings import Settings
from chargegate.store import station_sql
from chargegate.store.models import (
    ChargingSession,
    Command,
    Party,
    Reservation,
    StationConfiguration,
)
from chargegate.store.units import Units

from .outbox import enqueue, outbox_values
from .ports import OutboxSignal, PeerWire
from .pushes import PeerPushes

log = logging.getLogger(__name__)

# A START_SESSION whose outcome was one of these may still be the origin of a transaction:
# a station can start after we reported TIMEOUT (decisions.md, ocpi/ocpi issue 475).
_LINKABLE_RESULTS = (CommandResultType.ACCEPTED.value, CommandResultType.TIMEOUT.value)


# A reserved EVSE in these states cannot be honoured: the reservation is cancelled.
_INOPERATIVE = frozenset({"Faulted", "Unavailable"})


@dataclass(frozen=True, slots=True)
class MeterSample:
    wh: int
    timestamp: datetime


class StationEvents:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        wire: PeerWire,
        notify: OutboxSignal,
        units: Units,
    ) -> None:
        self._settings = settings
        self._units = units
        self._sessions = sessions
        self._wire = wire
        self._pushes = PeerPushes(wire)
        self._notify = notify

    async def boot(
        self,
        station_id: str,
        ocpp_version: str,
        *,
        vendor: str | None,
        model: str | None,
        serial_number: str | None = None,
        firmware_version: str | None = None,
    ) -> None:
        identity = {
            "vendor": vendor,
            "model": model,
            "serial_number": serial_number,
            "firmware_version": firmware_version,
        }
        await self._units.run(
            station_sql.station_booted, station_id, ocpp_version, identity, utcnow()
        )

    async def connected(self, station_id: str, ocpp_version: str) -> None:
        """A socket opened: the station exists from now on, even before it boots."""
        await self._units.run(station_sql.station_connected, station_id, ocpp_version, utcnow())

    async def status(
        self, station_id: str, connector_id: int, status: str, error_code: str | None
    ) -> None:
        await self._units.run(
            station_sql.connector_status, station_id, connector_id, status, error_code, utcnow()
        )
        if status in _INOPERATIVE:
            await self.cancel_reservations_at(station_id, connector_id, f"the EVSE became {status}")

    async def transaction_started(
        self,
        station_id: str,
        *,
        connector_id: int,
        id_tag: str,
        meter_start: int,
        timestamp: datetime,
        reservation_id: int | None = None,
        transaction_id: str | None = None,
        remote_start_id: int | None = None,
    ) -> str:
        """Store the transaction as a Session and push it; returns the OCPP transaction id.

        OCPP 1.6 leaves the id to us (`transaction_id` None): the session's integer key is used.
        A repeated StartTransaction (same station, connector, tag, time) gets the same id back.
        """
        now = utcnow()
        async with self._sessions.begin() as s:
            existing = await s.scalar(
                select(ChargingSession).where(
                    ChargingSession.station_id == station_id,
                    ChargingSession.connector_id == connector_id,
                    ChargingSession.id_tag == id_tag,
                    ChargingSession.start_date_time == timestamp,
                )
            )
            if existing is not None and existing.transaction_id is not None:
                return existing.transaction_id
            origin = await self._origin(
                s, station_id, connector_id, id_tag, reservation_id, remote_start_id, now
            )
            reserved = await self._reserved_session(s, station_id, reservation_id)
            if reserved is not None:
                # The reservation's Session (RESERVATION) becomes the charging one.
                reserved.connector_id = connector_id
                reserved.transaction_id = transaction_id
                reserved.meter_start = reserved.meter_last = meter_start
                reserved.status = "ACTIVE"
                reserved.start_date_time = timestamp
                reserved.last_updated = now
                await s.flush()
                if reserved.transaction_id is None:
                    reserved.transaction_id = str(reserved.pk)
                await self._consume_reservation(s, station_id, reservation_id)  # type: ignore[arg-type]
                await self._pushes.session(s, reserved)
                tx_id = reserved.transaction_id
                self._notify()
                return tx_id
            session = ChargingSession(
                id=uuid.uuid4().hex[:24],
                station_id=station_id,
                connector_id=connector_id,
                transaction_id=transaction_id,
                id_tag=id_tag,
                meter_start=meter_start,
                meter_last=meter_start,
                kwh=0.0,
                status="ACTIVE",
                start_date_time=timestamp,
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
            if reservation_id is not None:
                await self._consume_reservation(s, station_id, reservation_id)
            await self._pushes.session(s, session)
            tx_id = session.transaction_id
        self._notify()
        return tx_id

    async def transaction_stopped(
        self,
        station_id: str,
        *,
        transaction_id: str,
        meter_stop: int | None,
        timestamp: datetime,
        reason: str | None,
    ) -> None:
        async with self._sessions.begin() as s:
            session = await self._session_of(s, station_id, transaction_id)
            if session is None:
                log.warning("station %s stopped unknown transaction %s", station_id, transaction_id)
                return
            if session.status == "COMPLETED":
                log.info(
                    "duplicate stop of transaction %s on %s ignored", transaction_id, station_id
                )
                return
            if meter_stop is not None:
                session.meter_last = meter_stop
            session.kwh = _kwh(session.meter_start, session.meter_last)
            session.end_date_time = timestamp
            session.stop_reason = reason
            session.status = "COMPLETED"
            session.last_updated = utcnow()
            await self._pushes.session(s, session)
            await self._pushes.cdr(s, session)
        self._notify()

    async def meter_values(self, station_id: str, transaction_id: str, sample: MeterSample) -> None:
        async with self._sessions.begin() as s:
            session = await self._session_of(s, station_id, transaction_id)
            if session is None or session.status != "ACTIVE":
                return
            session.meter_last = sample.wh
            session.kwh = _kwh(session.meter_start, sample.wh)
            session.last_updated = utcnow()

    async def knows_transaction(self, station_id: str, transaction_id: str) -> bool:
        async with self._sessions() as s:
            return await self._session_of(s, station_id, transaction_id) is not None

    async def reservation_ended(self, station_id: str, ocpp_id: int, *, removed: bool) -> None:
        """The station ended a reservation: expired (its natural end) or removed. A removal is
        told to the eMSP as CANCELED_RESERVATION at the RESERVE_NOW response_url (2.2.1)."""
        async with self._sessions.begin() as s:
            reservation = await s.scalar(
                select(Reservation).where(
                    Reservation.station_id == station_id,
                    Reservation.ocpp_reservation_id == ocpp_id,
                    Reservation.status == "ACTIVE",
                )
            )
            if reservation is None:
                return
            if not removed:
                reservation.status = "EXPIRED"
                await self.end_reservation_session(s, reservation)
                return
            await self._cancel_reservation(s, reservation, "the charge point removed it")
        self._notify()

    async def cancel_reservations_at(
        self, station_id: str, connector_id: int | None, why: str
    ) -> None:
        """The CPO drops what it can no longer honour (an EVSE that faulted, an operator's
        lock); `connector_id` None means the whole station."""
        query = select(Reservation).where(
            Reservation.station_id == station_id, Reservation.status == "ACTIVE"
        )
        if connector_id is not None:
            query = query.where(Reservation.connector_id == connector_id)
        async with self._sessions.begin() as s:
            reservations = list(await s.scalars(query))
            for reservation in reservations:
                await self._cancel_reservation(s, reservation, why)
        if reservations:
            self._notify()

    async def expire_reservations(self) -> None:
        """Reservations past their expiry_date end (OCPP 1.6 stations do not report it)."""
        async with self._sessions.begin() as s:
            expired = list(
                await s.scalars(
                    select(Reservation).where(
                        Reservation.status == "ACTIVE", Reservation.expiry_date < utcnow()
                    )
                )
            )
            for reservation in expired:
                reservation.status = "EXPIRED"
                await self.end_reservation_session(s, reservation)
        if expired:
            self._notify()

    async def configuration_reported(
        self, station_id: str, entries: list[dict[str, object]]
    ) -> None:
        now = utcnow()
        async with self._sessions.begin() as s:
            for entry in entries:
                key = str(entry["key"])[:50]
                row = await s.get(StationConfiguration, (station_id, key))
                if row is None:
                    row = StationConfiguration(station_id=station_id, key=key)
                    s.add(row)
                value = entry.get("value")
                row.value = None if value is None else str(value)
                row.readonly = bool(entry.get("readonly"))
                row.fetched_at = now

    # ---- helpers -----------------------------------------------------------------------------

    async def end_reservation_session(self, s: AsyncSession, reservation: Reservation) -> None:
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
        await self._pushes.session(s, session)

    async def _cancel_reservation(
        self, s: AsyncSession, reservation: Reservation, why: str
    ) -> None:
        reservation.status = "CANCELLED"
        await self.end_reservation_session(s, reservation)
        party = await s.get(Party, reservation.party_id)
        command = await s.get(Command, reservation.command_id) if reservation.command_id else None
        if (
            party is None
            or command is None
            or command.ocpi_version != "2.2.1"  # 2.1.1 has no such result
            or reservation.response_url is None
        ):
            return
        await enqueue(
            s,
            outbox_values(
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
                horizon=self._settings.delivery_result_horizon,
            ),
        )

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
        self,
        s: AsyncSession,
        station_id: str,
        connector_id: int,
        id_tag: str,
        reservation_id: int | None,
        remote_start_id: int | None,
        now: datetime,
    ) -> Command | None:
        """The command this transaction answers: by remoteStartId (2.0.1), the reservation's,
        or a recent START_SESSION for the same token on this station."""
        if remote_start_id is not None:
            # The newest: ids repeat over time (domain/ids.py), an old command's must not win.
            by_id = await s.scalar(
                select(Command)
                .where(Command.station_id == station_id, Command.remote_start_id == remote_start_id)
                .order_by(Command.created_at.desc())
                .limit(1)
            )
            if by_id is not None:
                return by_id
        if reservation_id is not None:
            reservation = await s.scalar(
                select(Reservation).where(
                    Reservation.station_id == station_id,
                    Reservation.ocpp_reservation_id == reservation_id,
                )
            )
            if reservation is not None and reservation.command_id is not None:
                return await s.get(Command, reservation.command_id)
        since = now - timedelta(seconds=self._settings.session_link_window)
        already_linked = select(ChargingSession.command_id).where(
            ChargingSession.command_id.is_not(None)
        )
        candidates = await s.scalars(
            select(Command)
            .where(
                Command.type == CommandType.START_SESSION.value,
                Command.station_id == station_id,
                Command.token_uid == id_tag,
                Command.created_at >= since,
                (Command.result.is_(None)) | (Command.result.in_(_LINKABLE_RESULTS)),
                Command.id.not_in(already_linked),
            )
            .order_by(Command.created_at.desc())
        )
        for command in candidates:
            if command.connector_id in (None, connector_id):
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


def _kwh(meter_start: int, meter_wh: int) -> float:
    return round(max(meter_wh - meter_start, 0) / 1000.0, 4)
