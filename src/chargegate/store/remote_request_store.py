"""The service's RemoteRequestStore (service/remote_requests.py): operator remote request
records, the stations, connectors and sessions they name, and the stored configuration."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chargegate.domain.clock import utcnow
from chargegate.service.remote_requests import SUCCEEDED, WAITING, RemoteRequestRow, RequestOutcome

from .models import ChargingSession, Connector, RemoteRequest, Station, StationConfiguration

_ATTEMPT = "remote_start_attempt"
# A transaction may be stamped by the station's clock a little before the attempt was made.
_CLOCK_SKEW = timedelta(seconds=5)


class SqlRemoteRequestStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def station(self, station_id: str) -> Station | None:
        async with self._sessions() as s:
            return await s.get(Station, station_id)

    async def connector(
        self, station_id: str, connector_id: int | None, connector_uuid: str | None
    ) -> Connector | None:
        async with self._sessions() as s:
            return await _connector(s, station_id, connector_id, connector_uuid)

    async def session(
        self, session_id: str | None, station_id: str | None, transaction_id: str | None
    ) -> ChargingSession | None:
        query = select(ChargingSession)
        if session_id is not None:
            query = query.where(ChargingSession.id == session_id)
        else:
            query = query.where(
                ChargingSession.station_id == station_id,
                ChargingSession.transaction_id == transaction_id,
            )
        async with self._sessions() as s:
            session: ChargingSession | None = await s.scalar(query)
            return session

    async def add(self, values: dict[str, Any]) -> RemoteRequest:
        record = RemoteRequest(**values)
        async with self._sessions.begin() as s:
            s.add(record)
        return record

    async def finish(self, record_id: str, outcome: RequestOutcome) -> RemoteRequest:
        async with self._sessions.begin() as s:
            record = await s.get(RemoteRequest, record_id)
            assert record is not None
            record.status = outcome.status
            record.response = outcome.response
            record.message = outcome.message
            record.ocpp_message_ids = [*record.ocpp_message_ids, *outcome.message_ids]
            if outcome.finished_at is not None:
                record.finished_at = outcome.finished_at
        return record

    async def get(self, record_id: str) -> RemoteRequest | None:
        async with self._sessions() as s:
            return await s.get(RemoteRequest, record_id)

    async def stored_configuration(self, station_id: str) -> list[StationConfiguration]:
        async with self._sessions() as s:
            return list(
                await s.scalars(
                    select(StationConfiguration)
                    .where(StationConfiguration.station_id == station_id)
                    .order_by(StationConfiguration.key)
                )
            )

    async def store_configuration(self, station_id: str, keys: list[dict[str, Any]]) -> None:
        await store_configuration(self._sessions, station_id, keys)

    async def waiting_attempts(self) -> list[RemoteRequest]:
        async with self._sessions() as s:
            return list(
                await s.scalars(
                    select(RemoteRequest).where(
                        RemoteRequest.kind == _ATTEMPT, RemoteRequest.status == WAITING
                    )
                )
            )

    async def due_stops(self, now: datetime) -> list[RemoteRequest]:
        async with self._sessions() as s:
            return list(
                await s.scalars(
                    select(RemoteRequest).where(
                        RemoteRequest.kind == _ATTEMPT,
                        RemoteRequest.status == SUCCEEDED,
                        RemoteRequest.stop_at.is_not(None),
                        RemoteRequest.stop_at <= now,
                        RemoteRequest.stop_request_id.is_(None),
                    )
                )
            )

    async def attempt_session(self, attempt: RemoteRequestRow) -> ChargingSession | None:
        assert attempt.valid_until is not None
        async with self._sessions() as s:
            session: ChargingSession | None = await s.scalar(
                select(ChargingSession)
                .where(
                    ChargingSession.station_id == attempt.station_id,
                    ChargingSession.connector_id == attempt.connector_id,
                    ChargingSession.id_tag == attempt.id_tag,
                    ChargingSession.start_date_time >= attempt.created_at - _CLOCK_SKEW,
                    ChargingSession.start_date_time <= attempt.valid_until,
                )
                .order_by(ChargingSession.pk)
            )
            return session

    async def settle_attempt(self, attempt_id: str, values: dict[str, Any]) -> None:
        async with self._sessions.begin() as s:
            await s.execute(
                update(RemoteRequest)
                .where(RemoteRequest.id == attempt_id, RemoteRequest.status == WAITING)
                .values(**values)
            )

    async def claim_stop(self, attempt_id: str, marker: str) -> bool:
        async with self._sessions.begin() as s:
            claimed = await s.execute(
                update(RemoteRequest)
                .where(RemoteRequest.id == attempt_id, RemoteRequest.stop_request_id.is_(None))
                .values(stop_request_id=marker)
            )
            return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]

    async def set_stop_request(self, attempt_id: str, stop_request_id: str) -> None:
        async with self._sessions.begin() as s:
            await s.execute(
                update(RemoteRequest)
                .where(RemoteRequest.id == attempt_id)
                .values(stop_request_id=stop_request_id)
            )

    async def set_station_lock(self, station_id: str, locked: bool) -> Station | None:
        async with self._sessions.begin() as s:
            station = await s.get(Station, station_id)
            if station is not None:
                station.locked = locked
        return station

    async def set_connector_lock(
        self, station_id: str, connector_uuid: str, locked: bool
    ) -> Connector | None:
        """None (and nothing changed) for an unknown connector or connector 0."""
        async with self._sessions.begin() as s:
            connector = await _connector(s, station_id, None, connector_uuid)
            if connector is None or connector.connector_id == 0:
                return None
            connector.locked = locked
        return connector


async def _connector(
    s: AsyncSession, station_id: str, connector_id: int | None, connector_uuid: str | None
) -> Connector | None:
    if connector_uuid is not None:
        connector: Connector | None = await s.scalar(
            select(Connector).where(
                Connector.uuid == connector_uuid, Connector.station_id == station_id
            )
        )
        return connector
    if connector_id is not None:
        return await s.get(Connector, (station_id, connector_id))
    return None


async def store_configuration(
    sessions: async_sessionmaker[AsyncSession], station_id: str, entries: list[dict[str, Any]]
) -> None:
    """Configuration keys as a station reported them (key, value, readonly), replacing what
    it reported before; keys are cut to the column's 50 characters, values kept as text."""
    now = utcnow()
    async with sessions.begin() as s:
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
