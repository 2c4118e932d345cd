"""What every operator remote request shares: its record (created PENDING, finished with the
station's answer and the OCPP message ids it caused), the station it names, its slot under the
cap on requests in flight (remote_request_cap.py), and its call sent past the HTTP answer."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from chargegate.cluster.router import StationRouter
from chargegate.domain import station_calls as sc
from chargegate.domain.clock import utcnow
from chargegate.domain.ids import new_id
from chargegate.domain.station_calls import Outcome, StationReply
from chargegate.settings import Settings

from .background import BackgroundTasks
from .remote_errors import RemoteCommandError
from .remote_request_cap import RequestSlots

log = logging.getLogger(__name__)


# Record statuses. Async attempts move PENDING → WAITING → SUCCEEDED | EXPIRED.
PENDING, ACCEPTED, REJECTED = "PENDING", "ACCEPTED", "REJECTED"
TIMEOUT, FAILED, OFFLINE = "TIMEOUT", "FAILED", "OFFLINE"
WAITING, SUCCEEDED, EXPIRED = "WAITING", "SUCCEEDED", "EXPIRED"
# Statuses in which the station never carried the request out.
UNREACHED = (TIMEOUT, FAILED, OFFLINE)

_STATUS_OF_OUTCOME = {
    Outcome.ACCEPTED: ACCEPTED,
    Outcome.TIMEOUT: TIMEOUT,
    Outcome.CONNECTION_LOST: FAILED,
    Outcome.CALL_ERROR: FAILED,
    Outcome.OFFLINE: OFFLINE,
}


def record_status(reply: StationReply) -> str:
    return _STATUS_OF_OUTCOME.get(reply.outcome, REJECTED)


def reply_message(reply: StationReply) -> str | None:
    if reply.outcome is Outcome.CALL_ERROR:
        return f"station answered CALLERROR {reply.error_code}: {reply.description}"
    if reply.outcome in (Outcome.TIMEOUT, Outcome.CONNECTION_LOST, Outcome.OFFLINE):
        return reply.description
    return None


class RemoteRequestRow(Protocol):
    """A remote request record as the service reads it and the operator API shows it (what
    was asked, the station's answer, and for a remote start attempt how it was followed)."""

    @property
    def id(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def station_id(self) -> str: ...

    @property
    def connector_id(self) -> int | None: ...

    @property
    def request(self) -> dict[str, Any]: ...

    @property
    def status(self) -> str: ...

    @property
    def response(self) -> dict[str, Any] | None: ...

    @property
    def message(self) -> str | None: ...

    @property
    def ocpp_message_ids(self) -> list[str]: ...

    @property
    def operator_key_id(self) -> int | None: ...

    @property
    def id_tag(self) -> str | None: ...

    @property
    def session_id(self) -> str | None: ...

    @property
    def valid_until(self) -> datetime | None: ...

    @property
    def stop_minutes(self) -> float | None: ...

    @property
    def stop_at(self) -> datetime | None: ...

    @property
    def stop_request_id(self) -> str | None: ...

    @property
    def created_at(self) -> datetime: ...

    @property
    def finished_at(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class RequestOutcome:
    """What a remote request's record is set to when the station's answer (or its absence) is
    in: `finished_at` None keeps it open (a remote start attempt then waits for its
    transaction)."""

    status: str
    response: dict[str, Any] | None
    message: str | None
    message_ids: list[str]  # OCPP message ids it caused, appended to the record's
    finished_at: datetime | None


class StationRow(Protocol):
    """A station a remote request names."""

    @property
    def locked(self) -> bool: ...


class ConnectorRow(Protocol):
    """A connector a remote request names."""

    @property
    def connector_id(self) -> int: ...

    @property
    def uuid(self) -> str: ...

    @property
    def locked(self) -> bool: ...


class SessionRow(Protocol):
    """A charging session a remote stop or a remote start attempt reads."""

    @property
    def id(self) -> str: ...

    @property
    def station_id(self) -> str: ...

    @property
    def connector_id(self) -> int: ...

    @property
    def transaction_id(self) -> str | None: ...

    @property
    def status(self) -> str: ...

    @property
    def start_date_time(self) -> datetime: ...


class ConfigurationRow(Protocol):
    """A configuration key as the station last reported it (the operator API shows it)."""

    @property
    def key(self) -> str: ...

    @property
    def value(self) -> str | None: ...

    @property
    def readonly(self) -> bool: ...

    @property
    def fetched_at(self) -> datetime: ...


def failure(status: str, record: RemoteRequestRow) -> RemoteCommandError:
    """The error an operator gets for a request the station did not carry out."""
    kind = {TIMEOUT: "timeout", OFFLINE: "offline"}.get(status, "station_error")
    message = record.message or f"station request {status.lower()}"
    return RemoteCommandError(kind, message, record.id)


class RemoteRequestStore(Protocol):
    """Remote request records and what they read, each call one transaction."""

    async def station(self, station_id: str) -> StationRow | None: ...

    async def connector(
        self, station_id: str, connector_id: int | None, connector_uuid: str | None
    ) -> ConnectorRow | None:
        """By uuid if given, else by number."""

    async def session(
        self, session_id: str | None, station_id: str | None, transaction_id: str | None
    ) -> SessionRow | None:
        """By id if given, else by station and OCPP transaction id."""

    async def add(self, values: dict[str, Any]) -> RemoteRequestRow: ...

    async def finish(self, record_id: str, outcome: RequestOutcome) -> RemoteRequestRow:
        """Sets the outcome and appends its OCPP message ids."""

    async def get(self, record_id: str) -> RemoteRequestRow | None: ...

    async def stored_configuration(self, station_id: str) -> Sequence[ConfigurationRow]: ...

    async def store_configuration(self, station_id: str, keys: list[dict[str, Any]]) -> None:
        """The keys a GetConfiguration returned (key, value, readonly), replacing earlier."""

    async def waiting_attempts(self) -> Sequence[RemoteRequestRow]:
        """Remote start attempts still WAITING for their transaction."""

    async def due_stops(self, now: datetime) -> Sequence[RemoteRequestRow]:
        """SUCCEEDED attempts whose stopMinutes are up and whose stop is not claimed yet."""

    async def attempt_session(self, attempt: RemoteRequestRow) -> SessionRow | None:
        """The first session of the attempt's connector and idTag started between its
        creation (less a few seconds of clock skew) and its validUntil."""

    async def settle_attempt(self, attempt_id: str, values: dict[str, Any]) -> None:
        """Applies `values` if the attempt is still WAITING."""

    async def claim_stop(self, attempt_id: str, marker: str) -> bool:
        """Marks the attempt's stop as being sent; False if another node did first."""

    async def set_stop_request(self, attempt_id: str, stop_request_id: str) -> None: ...

    async def set_station_lock(self, station_id: str, locked: bool) -> StationRow | None: ...

    async def set_connector_lock(
        self, station_id: str, connector_uuid: str, locked: bool
    ) -> ConnectorRow | None: ...


class RemoteCalls:
    """Records, stations and slots of remote requests, and the calls sent past the HTTP
    answer."""

    def __init__(
        self,
        settings: Settings,
        store: RemoteRequestStore,
        router: StationRouter,
        slots: RequestSlots,
    ) -> None:
        self.settings = settings
        self.store = store
        self.router = router
        self.slots = slots
        self._tasks = BackgroundTasks()

    async def station(self, station_id: str) -> StationRow:
        station = await self.store.station(station_id)
        if station is None:
            raise RemoteCommandError("not_found", f"unknown station {station_id}")
        return station

    async def connector(
        self, station_id: str, connector_id: int | None, connector_uuid: str | None
    ) -> ConnectorRow:
        if connector_uuid is None and connector_id is None:
            raise RemoteCommandError("invalid", "give connectorId or connectorUuid")
        connector = await self.store.connector(station_id, connector_id, connector_uuid)
        if connector is None or connector.connector_id == 0:
            which = connector_uuid or connector_id
            raise RemoteCommandError("not_found", f"station {station_id} has no connector {which}")
        return connector

    async def check_online(self, station_id: str) -> None:
        if not await self.router.is_connected(station_id):
            raise RemoteCommandError("offline", f"station {station_id} is offline")

    async def new_record(
        self,
        kind: str,
        station_id: str,
        connector_id: int | None,
        body: dict[str, Any],
        key_id: int | None,
        **extra: Any,
    ) -> RemoteRequestRow:
        return await self.store.add(
            dict(
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
        )

    async def finish(
        self,
        record_id: str,
        status: str,
        response: dict[str, Any] | None,
        message: str | None,
        message_ids: list[str],
        finished: bool = True,
    ) -> RemoteRequestRow:
        finished_at = utcnow() if finished else None
        outcome = RequestOutcome(status, response, message, message_ids, finished_at)
        return await self.store.finish(record_id, outcome)

    async def record_with_slot(
        self,
        slot: str | None,
        kind: str,
        station_id: str,
        connector_id: int | None,
        body: dict[str, Any],
        key_id: int | None,
        **extra: Any,
    ) -> RemoteRequestRow:
        """`new_record` for a request holding `slot`, which is given back if that fails."""
        try:
            return await self.new_record(kind, station_id, connector_id, body, key_id, **extra)
        except BaseException:
            await self.slots.release(slot)
            raise

    def send_later(
        self,
        record_id: str,
        station_id: str,
        request: sc.StationRequest,
        slot: str | None,
        success_status: str = ACCEPTED,
    ) -> None:
        """Sends the request past the HTTP answer; the record then says how it went."""
        self._tasks.spawn(self._send(record_id, station_id, request, slot, success_status))

    async def _send(
        self,
        record_id: str,
        station_id: str,
        request: sc.StationRequest,
        slot: str | None,
        success_status: str,
    ) -> None:
        """Holds its cap slot until the station's reply is in."""
        try:
            reply = await self.router.call(station_id, request, self.settings.operator_timeout)
            status = record_status(reply)
            await self.finish(
                record_id,
                success_status if status == ACCEPTED else status,
                {"status": reply.status} if reply.status else None,
                reply_message(reply),
                [reply.unique_id] if reply.unique_id else [],
                finished=status != ACCEPTED or success_status == ACCEPTED,
            )
        except Exception:
            log.exception("remote request %s failed", record_id)
            await self.finish(record_id, FAILED, None, "internal error", [])
        finally:
            await self.slots.release(slot)

    async def stop(self) -> None:
        await self._tasks.stop()
