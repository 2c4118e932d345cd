"""Operator remote commands (seed 004): synchronous ones return the station's own answer,
asynchronous ones are recorded and polled. Every request is recorded with the OCPP messages it
caused, and at most `operator_parallel_cap` are in flight at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chargegate.cluster.cap import ParallelCap
from chargegate.cluster.router import StationRouter
from chargegate.domain import station_calls as sc
from chargegate.domain.clock import as_utc, utcnow
from chargegate.domain.ids import new_id, new_remote_start_id
from chargegate.domain.station_calls import Outcome, StationReply
from chargegate.settings import Settings
from chargegate.store.models import (
    ChargingSession,
    Connector,
    RemoteRequest,
    Station,
    StationConfiguration,
)

from .background import BackgroundTasks

log = logging.getLogger(__name__)


class RemoteCommandError(Exception):
    """Why a remote command could not be carried out; `kind` picks the HTTP status."""

    def __init__(self, kind: str, message: str, record_id: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.record_id = record_id


# Record statuses. Async attempts move PENDING → WAITING → SUCCEEDED | EXPIRED.
PENDING, ACCEPTED, REJECTED = "PENDING", "ACCEPTED", "REJECTED"
TIMEOUT, FAILED, OFFLINE = "TIMEOUT", "FAILED", "OFFLINE"
WAITING, SUCCEEDED, EXPIRED = "WAITING", "SUCCEEDED", "EXPIRED"

_STATUS_OF_OUTCOME = {
    Outcome.ACCEPTED: ACCEPTED,
    Outcome.TIMEOUT: TIMEOUT,
    Outcome.CONNECTION_LOST: FAILED,
    Outcome.CALL_ERROR: FAILED,
    Outcome.OFFLINE: OFFLINE,
}


def record_status(reply: StationReply) -> str:
    return _STATUS_OF_OUTCOME.get(reply.outcome, REJECTED)


def _reply_message(reply: StationReply) -> str | None:
    if reply.outcome is Outcome.CALL_ERROR:
        return f"station answered CALLERROR {reply.error_code}: {reply.description}"
    if reply.outcome in (Outcome.TIMEOUT, Outcome.CONNECTION_LOST, Outcome.OFFLINE):
        return reply.description
    return None


@dataclass(frozen=True, slots=True)
class ConfigurationItem:
    key: str
    value: str


class RemoteCommandService:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        router: StationRouter,
        cap: ParallelCap,
        on_lock: Callable[[str, int | None, str], Awaitable[None]] | None = None,
    ) -> None:
        """`on_lock(station, connector or None, why)` runs after a lock is set: reservations
        there can no longer be honoured."""
        self._on_lock = on_lock
        self._settings = settings
        self._sessions = sessions
        self._router = router
        self._cap = cap
        self._tasks = BackgroundTasks()

    # ---- synchronous -------------------------------------------------------------------------

    async def get_configuration(
        self, station_id: str, keys: list[str], key_id: int | None
    ) -> RemoteRequest:
        request = sc.GetConfiguration(tuple(keys))
        record, reply = await self._sync(
            "get_configuration", station_id, None, request, {"keys": keys}, key_id
        )
        if reply.outcome is Outcome.ACCEPTED:
            await self._store_configuration(station_id, reply.data.get("configurationKey", []))
        return record

    async def stored_configuration(self, station_id: str) -> list[StationConfiguration]:
        async with self._sessions() as s:
            await self._station(s, station_id)
            return list(
                await s.scalars(
                    select(StationConfiguration)
                    .where(StationConfiguration.station_id == station_id)
                    .order_by(StationConfiguration.key)
                )
            )

    async def change_configurations(
        self, station_id: str, items: list[ConfigurationItem], key_id: int | None
    ) -> RemoteRequest:
        """One ChangeConfiguration per key, in order, within one operator timeout in all."""
        async with self._sessions() as s:
            await self._station(s, station_id)
        await self._check_online(station_id)
        async with self._slot():
            record = await self._new_record(
                "change_configurations",
                station_id,
                None,
                {"configurations": [{"key": i.key, "value": i.value} for i in items]},
                key_id,
            )
            deadline = asyncio.get_running_loop().time() + self._settings.operator_timeout
            results: list[dict[str, Any]] = []
            ids: list[str] = []
            overall = ACCEPTED
            for item in items:
                remaining = deadline - asyncio.get_running_loop().time()
                reply = await self._router.call(
                    station_id, sc.ChangeConfiguration(item.key, item.value), remaining
                )
                ids += [reply.unique_id] if reply.unique_id else []
                status = record_status(reply)
                results.append(
                    {
                        "key": item.key,
                        "status": reply.status or status.title(),
                        **({"message": m} if (m := _reply_message(reply)) else {}),
                    }
                )
                if status in (TIMEOUT, FAILED, OFFLINE):
                    overall = status
                    break
            for item in items[len(results) :]:
                results.append({"key": item.key, "status": "NotSent"})
            record = await self._finish(record.id, overall, {"results": results}, None, ids)
        if overall in (TIMEOUT, FAILED, OFFLINE):
            raise _failure(overall, record)
        return record

    async def reset(self, station_id: str, reset_type: str, key_id: int | None) -> RemoteRequest:
        record, _ = await self._sync(
            "reset", station_id, None, sc.Reset(reset_type), {"type": reset_type}, key_id
        )
        return record

    async def unlock_connector(
        self, station_id: str, connector_uuid: str, key_id: int | None
    ) -> RemoteRequest:
        async with self._sessions() as s:
            connector = await s.scalar(
                select(Connector).where(
                    Connector.uuid == connector_uuid, Connector.station_id == station_id
                )
            )
        if connector is None:
            raise RemoteCommandError(
                "not_found", f"station {station_id} has no connector {connector_uuid}"
            )
        record, _ = await self._sync(
            "unlock_connector",
            station_id,
            connector.connector_id,
            sc.Unlock(connector.connector_id),
            {"connectorUuid": connector_uuid},
            key_id,
        )
        return record

    async def _sync(
        self,
        kind: str,
        station_id: str,
        connector_id: int | None,
        request: sc.StationRequest,
        body: dict[str, Any],
        key_id: int | None,
    ) -> tuple[RemoteRequest, StationReply]:
        async with self._sessions() as s:
            await self._station(s, station_id)
        await self._check_online(station_id)
        async with self._slot():
            record = await self._new_record(kind, station_id, connector_id, body, key_id)
            reply = await self._router.call(station_id, request, self._settings.operator_timeout)
            status = record_status(reply)
            response = (
                {"status": reply.status, **reply.data} if reply.status or reply.data else None
            )
            record = await self._finish(
                record.id,
                status,
                response,
                _reply_message(reply),
                [reply.unique_id] if reply.unique_id else [],
            )
        if status in (TIMEOUT, FAILED, OFFLINE):
            raise _failure(status, record)
        return record, reply

    # ---- asynchronous ------------------------------------------------------------------------

    async def remote_start_attempt(
        self,
        *,
        station_id: str,
        connector_id: int | None,
        connector_uuid: str | None,
        id_tag: str,
        valid_until: datetime | None,
        stop_minutes: float | None,
        key_id: int | None,
    ) -> RemoteRequest:
        now = utcnow()
        minute = self._settings.operator_minute_seconds
        valid_until = valid_until or now + timedelta(
            seconds=self._settings.remote_start_valid_minutes * minute
        )
        if as_utc(valid_until) <= now:
            raise RemoteCommandError("invalid", "validUntil is in the past")
        async with self._sessions() as s:
            station = await self._station(s, station_id)
            connector = await self._connector(s, station_id, connector_id, connector_uuid)
            if station.locked:
                raise RemoteCommandError("locked", f"station {station_id} is permanently locked")
            if connector.locked:
                raise RemoteCommandError(
                    "locked", f"connector {connector.connector_id} of {station_id} is locked"
                )
        await self._check_online(station_id)
        slot = await self._take_slot()
        try:
            record = await self._new_record(
                "remote_start_attempt",
                station_id,
                connector.connector_id,
                {
                    "idTag": id_tag,
                    "connectorUuid": connector.uuid,
                    "validUntil": valid_until.isoformat(),
                    "stopMinutes": stop_minutes,
                },
                key_id,
                id_tag=id_tag,
                valid_until=valid_until,
                stop_minutes=stop_minutes,
            )
        except BaseException:
            await self._release(slot)
            raise
        request = sc.RemoteStart(connector.connector_id, id_tag, "RFID", new_remote_start_id())
        self._tasks.spawn(
            self._async_call(record.id, station_id, request, slot, success_status=WAITING)
        )
        return record

    async def remote_stop(
        self,
        *,
        session_id: str | None,
        station_id: str | None,
        transaction_id: str | None,
        key_id: int | None,
        system: bool = False,
    ) -> RemoteRequest:
        async with self._sessions() as s:
            query = select(ChargingSession)
            if session_id is not None:
                query = query.where(ChargingSession.id == session_id)
            else:
                query = query.where(
                    ChargingSession.station_id == station_id,
                    ChargingSession.transaction_id == transaction_id,
                )
            session = await s.scalar(query)
        if session is None or session.transaction_id is None:
            raise RemoteCommandError("not_found", "no such session or transaction")
        if session.status != "ACTIVE":
            raise RemoteCommandError("conflict", f"session {session.id} is {session.status}")
        await self._check_online(session.station_id)
        # The system's own stops (stopMinutes) must not be refused by the operators' cap.
        slot = None if system else await self._take_slot()
        try:
            record = await self._new_record(
                "remote_stop",
                session.station_id,
                session.connector_id,
                {
                    "sessionId": session.id,
                    "transactionId": session.transaction_id,
                    "system": system,
                },
                key_id,
                session_id=session.id,
            )
        except BaseException:
            await self._release(slot)
            raise
        self._tasks.spawn(
            self._async_call(
                record.id, session.station_id, sc.RemoteStop(session.transaction_id), slot
            )
        )
        return record

    async def clear_cache(self, station_id: str, key_id: int | None) -> RemoteRequest:
        async with self._sessions() as s:
            await self._station(s, station_id)
        await self._check_online(station_id)
        slot = await self._take_slot()
        try:
            record = await self._new_record("clear_cache", station_id, None, {}, key_id)
        except BaseException:
            await self._release(slot)
            raise
        self._tasks.spawn(self._async_call(record.id, station_id, sc.ClearCache(), slot))
        return record

    async def _async_call(
        self,
        record_id: str,
        station_id: str,
        request: sc.StationRequest,
        slot: str | None,
        success_status: str = ACCEPTED,
    ) -> None:
        """Runs past the HTTP answer; holds its cap slot until the station's reply is in."""
        try:
            reply = await self._router.call(station_id, request, self._settings.operator_timeout)
            status = record_status(reply)
            await self._finish(
                record_id,
                success_status if status == ACCEPTED else status,
                {"status": reply.status} if reply.status else None,
                _reply_message(reply),
                [reply.unique_id] if reply.unique_id else [],
                finished=status != ACCEPTED or success_status == ACCEPTED,
            )
        except Exception:
            log.exception("remote request %s failed", record_id)
            await self._finish(record_id, FAILED, None, "internal error", [])
        finally:
            await self._release(slot)

    async def get(self, record_id: str, kind: str | None = None) -> RemoteRequest:
        async with self._sessions() as s:
            record = await s.get(RemoteRequest, record_id)
        if record is None or (kind is not None and record.kind != kind):
            raise RemoteCommandError("not_found", f"no {kind or 'remote request'} {record_id}")
        return record

    # ---- remote start attempts over time -----------------------------------------------------

    async def tick(self) -> None:
        """Attempts succeed when their transaction starts, expire at validUntil; started ones
        get their remote stop after stopMinutes. Runs every sweep on every node; each change is
        a conditional update, so two nodes never act twice."""
        now = utcnow()
        async with self._sessions() as s:
            waiting = list(
                await s.scalars(
                    select(RemoteRequest).where(
                        RemoteRequest.kind == "remote_start_attempt",
                        RemoteRequest.status == WAITING,
                    )
                )
            )
            due_stops = list(
                await s.scalars(
                    select(RemoteRequest).where(
                        RemoteRequest.kind == "remote_start_attempt",
                        RemoteRequest.status == SUCCEEDED,
                        RemoteRequest.stop_at.is_not(None),
                        RemoteRequest.stop_at <= now,
                        RemoteRequest.stop_request_id.is_(None),
                    )
                )
            )
        for attempt in waiting:
            await self._follow_attempt(attempt, now)
        for attempt in due_stops:
            await self._stop_after_minutes(attempt)

    async def _follow_attempt(self, attempt: RemoteRequest, now: datetime) -> None:
        assert attempt.valid_until is not None
        valid_until = as_utc(attempt.valid_until)
        async with self._sessions.begin() as s:
            session = await s.scalar(
                select(ChargingSession)
                .where(
                    ChargingSession.station_id == attempt.station_id,
                    ChargingSession.connector_id == attempt.connector_id,
                    ChargingSession.id_tag == attempt.id_tag,
                    ChargingSession.start_date_time >= attempt.created_at - timedelta(seconds=5),
                    ChargingSession.start_date_time <= attempt.valid_until,
                )
                .order_by(ChargingSession.pk)
            )
            values: dict[str, Any]
            if session is not None:
                values = {"status": SUCCEEDED, "session_id": session.id, "finished_at": now}
                if attempt.stop_minutes:
                    minute = self._settings.operator_minute_seconds
                    values["stop_at"] = as_utc(session.start_date_time) + timedelta(
                        seconds=attempt.stop_minutes * minute
                    )
            elif now > valid_until:
                values = {
                    "status": EXPIRED,
                    "finished_at": now,
                    "message": "no transaction started before validUntil",
                }
            else:
                return
            await s.execute(
                update(RemoteRequest)
                .where(RemoteRequest.id == attempt.id, RemoteRequest.status == WAITING)
                .values(**values)
            )

    async def _stop_after_minutes(self, attempt: RemoteRequest) -> None:
        marker = new_id()
        async with self._sessions.begin() as s:
            claimed = await s.execute(
                update(RemoteRequest)
                .where(RemoteRequest.id == attempt.id, RemoteRequest.stop_request_id.is_(None))
                .values(stop_request_id=marker)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return
        try:
            stop = await self.remote_stop(
                session_id=attempt.session_id,
                station_id=None,
                transaction_id=None,
                key_id=attempt.operator_key_id,
                system=True,
            )
        except RemoteCommandError as exc:
            log.info("stopMinutes stop of %s not sent: %s", attempt.id, exc.message)
            stop_id = f"not sent: {exc.message}"[:36]
        else:
            stop_id = stop.id
        async with self._sessions.begin() as s:
            await s.execute(
                update(RemoteRequest)
                .where(RemoteRequest.id == attempt.id)
                .values(stop_request_id=stop_id)
            )

    # ---- locks -------------------------------------------------------------------------------

    async def set_station_lock(self, station_id: str, locked: bool) -> Station:
        async with self._sessions.begin() as s:
            station = await self._station(s, station_id)
            station.locked = locked
        if locked and self._on_lock is not None:
            await self._on_lock(station_id, None, "the operator locked the station")
        return station

    async def set_connector_lock(
        self, station_id: str, connector_uuid: str, locked: bool
    ) -> Connector:
        async with self._sessions.begin() as s:
            connector = await self._connector(s, station_id, None, connector_uuid)
            connector.locked = locked
        if locked and self._on_lock is not None:
            await self._on_lock(
                station_id, connector.connector_id, "the operator locked the connector"
            )
        return connector

    # ---- helpers -----------------------------------------------------------------------------

    async def _station(self, s: AsyncSession, station_id: str) -> Station:
        station = await s.get(Station, station_id)
        if station is None:
            raise RemoteCommandError("not_found", f"unknown station {station_id}")
        return station

    async def _connector(
        self, s: AsyncSession, station_id: str, connector_id: int | None, connector_uuid: str | None
    ) -> Connector:
        if connector_uuid is not None:
            connector = await s.scalar(
                select(Connector).where(
                    Connector.uuid == connector_uuid, Connector.station_id == station_id
                )
            )
        elif connector_id is not None:
            connector = await s.get(Connector, (station_id, connector_id))
        else:
            raise RemoteCommandError("invalid", "give connectorId or connectorUuid")
        if connector is None or connector.connector_id == 0:
            which = connector_uuid or connector_id
            raise RemoteCommandError("not_found", f"station {station_id} has no connector {which}")
        return connector

    async def _check_online(self, station_id: str) -> None:
        if not await self._router.is_connected(station_id):
            raise RemoteCommandError("offline", f"station {station_id} is offline")

    def _cap_reached(self) -> RemoteCommandError:
        return RemoteCommandError(
            "cap",
            f"at most {self._cap.limit} remote requests may be in flight at once; "
            "retry when one has finished",
        )

    async def _take_slot(self) -> str:
        try:
            slot = await self._cap.acquire()
        except Exception as exc:  # the cap's store (Redis in a cluster) is unreachable
            raise RemoteCommandError(
                "unavailable", f"cannot count requests in flight right now: {exc}"
            ) from exc
        if slot is None:
            raise self._cap_reached()
        return slot

    async def _release(self, slot: str | None) -> None:
        if slot is not None:
            await self._cap.release(slot)

    @contextlib.asynccontextmanager
    async def _slot(self) -> Any:
        slot = await self._take_slot()
        try:
            yield
        finally:
            await self._release(slot)

    async def _new_record(
        self,
        kind: str,
        station_id: str,
        connector_id: int | None,
        body: dict[str, Any],
        key_id: int | None,
        **extra: Any,
    ) -> RemoteRequest:
        record = RemoteRequest(
            id=new_id(),
            kind=kind,
            station_id=station_id,
            connector_id=connector_id,
            request=body,
            status=PENDING,
            ocpp_message_ids=[],
            operator_key_id=key_id,
            created_at=utcnow(),
            **extra,
        )
        async with self._sessions.begin() as s:
            s.add(record)
        return record

    async def _finish(
        self,
        record_id: str,
        status: str,
        response: dict[str, Any] | None,
        message: str | None,
        message_ids: list[str],
        finished: bool = True,
    ) -> RemoteRequest:
        async with self._sessions.begin() as s:
            record = await s.get(RemoteRequest, record_id)
            assert record is not None
            record.status = status
            record.response = response
            record.message = message
            record.ocpp_message_ids = [*record.ocpp_message_ids, *message_ids]
            if finished:
                record.finished_at = utcnow()
        return record

    async def _store_configuration(self, station_id: str, keys: list[dict[str, Any]]) -> None:
        now = utcnow()
        async with self._sessions.begin() as s:
            for entry in keys:
                row = await s.get(StationConfiguration, (station_id, entry["key"]))
                if row is None:
                    row = StationConfiguration(station_id=station_id, key=entry["key"])
                    s.add(row)
                row.value = entry.get("value")
                row.readonly = bool(entry.get("readonly"))
                row.fetched_at = now

    async def stop(self) -> None:
        await self._tasks.stop()


def _failure(status: str, record: RemoteRequest) -> RemoteCommandError:
    kind = {TIMEOUT: "timeout", OFFLINE: "offline"}.get(status, "station_error")
    message = record.message or f"station request {status.lower()}"
    return RemoteCommandError(kind, message, record.id)
