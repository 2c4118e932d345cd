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
from chargegate.store.models import (
    ChargingSession,
    Command,
    Connector,
    Party,
    Reservation,
    Station,
)

from .outbox import enqueue
from .ports import OutboxSignal, PeerWire

log = logging.getLogger(__name__)

# A START_SESSION whose outcome was one of these may still be the origin of a transaction:
# a station can start after we reported TIMEOUT (decisions.md, ocpi/ocpi issue 475).
_LINKABLE_RESULTS = (CommandResultType.ACCEPTED.value, CommandResultType.TIMEOUT.value)


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
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._wire = wire
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
        now = utcnow()
        async with self._sessions.begin() as s:
            station = await s.get(Station, station_id)
            if station is None:
                station = Station(id=station_id, first_seen=now, locked=False)
                s.add(station)
            station.ocpp_version = ocpp_version
            station.vendor, station.model = vendor, model
            station.serial_number, station.firmware_version = serial_number, firmware_version
            station.last_seen = station.last_boot = now

    async def connected(self, station_id: str, ocpp_version: str) -> None:
        """A socket opened: the station exists from now on, even before it boots."""
        now = utcnow()
        async with self._sessions.begin() as s:
            station = await s.get(Station, station_id)
            if station is None:
                s.add(
                    Station(
                        id=station_id,
                        ocpp_version=ocpp_version,
                        first_seen=now,
                        last_seen=now,
                        locked=False,
                    )
                )
            else:
                station.ocpp_version = ocpp_version
                station.last_seen = now

    async def status(
        self, station_id: str, connector_id: int, status: str, error_code: str | None
    ) -> None:
        now = utcnow()
        async with self._sessions.begin() as s:
            connector = await s.get(Connector, (station_id, connector_id))
            if connector is None:
                connector = Connector(
                    station_id=station_id,
                    connector_id=connector_id,
                    uuid=str(uuid.uuid4()),
                    locked=False,
                )
                s.add(connector)
            connector.ocpp_status = status
            connector.error_code = error_code
            connector.updated_at = now

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
            origin = await self._origin(s, station_id, connector_id, id_tag, reservation_id, now)
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
            await self._push_session(s, session)
            tx_id = session.transaction_id
        self._notify()
        return tx_id

    async def transaction_stopped(
        self,
        station_id: str,
        *,
        transaction_id: str,
        meter_stop: int,
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
            session.meter_last = meter_stop
            session.kwh = _kwh(session.meter_start, meter_stop)
            session.end_date_time = timestamp
            session.stop_reason = reason
            session.status = "COMPLETED"
            session.last_updated = utcnow()
            await self._push_session(s, session)
        self._notify()

    async def meter_values(self, station_id: str, transaction_id: str, sample: MeterSample) -> None:
        async with self._sessions.begin() as s:
            session = await self._session_of(s, station_id, transaction_id)
            if session is None or session.status != "ACTIVE":
                return
            session.meter_last = sample.wh
            session.kwh = _kwh(session.meter_start, sample.wh)
            session.last_updated = utcnow()

    # ---- helpers -----------------------------------------------------------------------------

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
        now: datetime,
    ) -> Command | None:
        """The command this transaction answers: the reservation's, or a recent START_SESSION."""
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

    async def _consume_reservation(self, s: AsyncSession, station_id: str, ocpp_id: int) -> None:
        reservation = await s.scalar(
            select(Reservation).where(
                Reservation.station_id == station_id, Reservation.ocpp_reservation_id == ocpp_id
            )
        )
        if reservation is not None:
            reservation.status = "USED"

    async def _push_session(self, s: AsyncSession, session: ChargingSession) -> None:
        if session.party_id is None:
            return
        party = await s.get(Party, session.party_id)
        if party is None or party.state != "REGISTERED" or party.ocpi_version is None:
            return
        url = self._wire.session_push_url(party, session)
        if url is None:
            return
        station = await s.get(Station, session.station_id)
        assert station is not None
        connectors = list(
            await s.scalars(select(Connector).where(Connector.station_id == station.id))
        )
        body = self._wire.session(party.ocpi_version, session, station, connectors, party)
        enqueue(
            s,
            kind="SESSION",
            party=party,
            method="PUT",
            url=url,
            body=body,
            correlation_id=session.command_id,
            fifo=True,
        )


def _kwh(meter_start: int, meter_wh: int) -> float:
    return round(max(meter_wh - meter_start, 0) / 1000.0, 4)
