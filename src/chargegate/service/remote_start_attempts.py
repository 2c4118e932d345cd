"""Remote start attempts: a RemoteStartTransaction sent now, followed until its transaction
starts (SUCCEEDED) or validUntil passes (EXPIRED); a started one is stopped after its
stopMinutes."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from chargegate.domain import station_calls as sc
from chargegate.domain.clock import as_utc, utcnow
from chargegate.domain.ids import new_id, new_remote_start_id

from .remote_errors import RemoteCommandError
from .remote_operator_requests import OperatorRequests
from .remote_requests import EXPIRED, SUCCEEDED, WAITING, RemoteCalls, RemoteRequestRow

log = logging.getLogger(__name__)


class RemoteStartAttempts:
    def __init__(self, calls: RemoteCalls, requests: OperatorRequests) -> None:
        """`requests` sends the remote stop after stopMinutes."""
        self._calls = calls
        self._requests = requests

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
    ) -> RemoteRequestRow:
        calls = self._calls
        now = utcnow()
        minute = calls.settings.operator_minute_seconds
        valid_until = valid_until or now + timedelta(
            seconds=calls.settings.remote_start_valid_minutes * minute
        )
        if as_utc(valid_until) <= now:
            raise RemoteCommandError("invalid", "validUntil is in the past")
        station = await calls.station(station_id)
        connector = await calls.connector(station_id, connector_id, connector_uuid)
        if station.locked:
            raise RemoteCommandError("locked", f"station {station_id} is permanently locked")
        if connector.locked:
            raise RemoteCommandError(
                "locked", f"connector {connector.connector_id} of {station_id} is locked"
            )
        await calls.check_online(station_id)
        slot = await calls.slots.take()
        record = await calls.record_with_slot(
            slot,
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
        request = sc.RemoteStart(connector.connector_id, id_tag, "RFID", new_remote_start_id())
        calls.send_later(record.id, station_id, request, slot, success_status=WAITING)
        return record

    async def tick(self) -> None:
        """Attempts succeed when their transaction starts, expire at validUntil; started ones
        get their remote stop after stopMinutes. Runs every sweep on every node; each change is
        a conditional update, so two nodes never act twice."""
        now = utcnow()
        store = self._calls.store
        waiting = await store.waiting_attempts()
        due_stops = await store.due_stops(now)
        for attempt in waiting:
            await self._follow(attempt, now)
        for attempt in due_stops:
            await self._stop_after_minutes(attempt)

    async def _follow(self, attempt: RemoteRequestRow, now: datetime) -> None:
        assert attempt.valid_until is not None
        session = await self._calls.store.attempt_session(attempt)
        values: dict[str, Any]
        if session is not None:
            values = {"status": SUCCEEDED, "session_id": session.id, "finished_at": now}
            if attempt.stop_minutes:
                minute = self._calls.settings.operator_minute_seconds
                values["stop_at"] = as_utc(session.start_date_time) + timedelta(
                    seconds=attempt.stop_minutes * minute
                )
        elif now > as_utc(attempt.valid_until):
            values = {
                "status": EXPIRED,
                "finished_at": now,
                "message": "no transaction started before validUntil",
            }
        else:
            return
        await self._calls.store.settle_attempt(attempt.id, values)

    async def _stop_after_minutes(self, attempt: RemoteRequestRow) -> None:
        store = self._calls.store
        if not await store.claim_stop(attempt.id, new_id()):
            return
        try:
            stop = await self._requests.remote_stop(
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
        await store.set_stop_request(attempt.id, stop_id)
