"""The service's AdmissionStore (service/station_admission.py)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chargegate.domain.clock import utcnow
from chargegate.service.station_admission import AdmissionRow, StationAlreadyRegistered

from .models import Station


def _row(station: Station) -> AdmissionRow:
    return AdmissionRow(
        station_id=station.id,
        registered=station.registered,
        disabled=station.disabled,
        password_hash=station.password_hash,
        ocpp_version=station.ocpp_version,
        last_seen=station.last_seen,
    )


class SqlStationAdmissionStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def register(self, station_id: str, password_hash: str | None) -> AdmissionRow:
        now = utcnow()
        try:
            async with self._sessions.begin() as s:
                station = await s.get(Station, station_id, with_for_update=True)
                if station is None:
                    station = Station(
                        id=station_id,
                        ocpp_version="1.6",
                        first_seen=now,
                        last_seen=now,
                        locked=False,
                        published=False,
                    )
                    s.add(station)
                elif station.registered:
                    raise StationAlreadyRegistered(f"station {station_id} is already registered")
                station.registered = True
                station.disabled = False
                station.password_hash = password_hash
                await s.flush()
                return _row(station)
        except IntegrityError as exc:  # registered at the same moment by another request
            raise StationAlreadyRegistered(f"station {station_id} is already registered") from exc

    async def get(self, station_id: str) -> AdmissionRow | None:
        async with self._sessions() as s:
            station = await s.get(Station, station_id)
            return _row(station) if station is not None else None

    async def all(self) -> list[AdmissionRow]:
        async with self._sessions() as s:
            stations = await s.scalars(select(Station).order_by(Station.id))
            return [_row(station) for station in stations]

    async def set_disabled(self, station_id: str, disabled: bool) -> AdmissionRow | None:
        return await self._update_registered(station_id, disabled=disabled)

    async def set_password_hash(
        self, station_id: str, password_hash: str | None
    ) -> AdmissionRow | None:
        return await self._update_registered(station_id, password_hash=password_hash)

    async def unregister(self, station_id: str) -> bool:
        async with self._sessions.begin() as s:
            result = await s.execute(
                update(Station)
                .where(Station.id == station_id, Station.registered.is_(True))
                .values(registered=False, disabled=False, password_hash=None)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def _update_registered(self, station_id: str, **values: object) -> AdmissionRow | None:
        async with self._sessions.begin() as s:
            result = await s.execute(
                update(Station)
                .where(Station.id == station_id, Station.registered.is_(True))
                .values(**values)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                return None
            station = await s.get(Station, station_id, populate_existing=True)
            return _row(station) if station is not None else None
