"""Operator remote requests: synchronous ones (configuration, reset, unlock) return the
station's own answer; asynchronous ones (remote stop, clear cache) are recorded and polled.
Every request is recorded with the OCPP messages it caused."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from chargegate.domain import station_calls as sc
from chargegate.domain.secret_configuration import mask_passwords
from chargegate.domain.station_calls import Outcome, StationReply

from .remote_errors import RemoteCommandError
from .remote_requests import (
    ACCEPTED,
    UNREACHED,
    ConfigurationRow,
    RemoteCalls,
    RemoteRequestRow,
    failure,
    record_status,
    reply_message,
)


@dataclass(frozen=True, slots=True)
class ConfigurationItem:
    key: str
    value: str


# Told of each configuration key a station took (station, key, value): the Basic auth password
# set this way must reach the admission registry (service/station_admission.py).
ConfigurationTaken = Callable[[str, str, str], Awaitable[None]]
_TAKEN = (Outcome.ACCEPTED, Outcome.REBOOT_REQUIRED)


class OperatorRequests:
    def __init__(self, calls: RemoteCalls, on_taken: ConfigurationTaken | None = None) -> None:
        self._calls = calls
        self._on_taken = on_taken

    # ---- synchronous -------------------------------------------------------------------------

    async def get_configuration(
        self, station_id: str, keys: list[str], key_id: int | None
    ) -> RemoteRequestRow:
        request = sc.GetConfiguration(tuple(keys))
        record, reply = await self._sync(
            "get_configuration", station_id, None, request, {"keys": keys}, key_id
        )
        if reply.outcome is Outcome.ACCEPTED:
            await self._calls.store.store_configuration(
                station_id, mask_passwords(reply.data.get("configurationKey", []))
            )
        return record

    async def stored_configuration(self, station_id: str) -> Sequence[ConfigurationRow]:
        await self._calls.station(station_id)
        return await self._calls.store.stored_configuration(station_id)

    async def change_configurations(
        self, station_id: str, items: list[ConfigurationItem], key_id: int | None
    ) -> RemoteRequestRow:
        """One ChangeConfiguration per key, in order, within one operator timeout in all."""
        calls = self._calls
        await calls.station(station_id)
        await calls.check_online(station_id)
        async with calls.slots.held():
            record = await calls.new_record(
                "change_configurations",
                station_id,
                None,
                # A password sent as configuration is never kept in the record.
                mask_passwords(
                    {"configurations": [{"key": i.key, "value": i.value} for i in items]}
                ),
                key_id,
            )
            loop = asyncio.get_running_loop()
            deadline = loop.time() + calls.settings.operator_timeout
            results: list[dict[str, Any]] = []
            ids: list[str] = []
            overall = ACCEPTED
            for item in items:
                remaining = deadline - loop.time()
                reply = await calls.router.call(
                    station_id, sc.ChangeConfiguration(item.key, item.value), remaining
                )
                ids += [reply.unique_id] if reply.unique_id else []
                if reply.outcome in _TAKEN and self._on_taken is not None:
                    await self._on_taken(station_id, item.key, item.value)
                status = record_status(reply)
                results.append(
                    {
                        "key": item.key,
                        "status": reply.status or status.title(),
                        **({"message": m} if (m := reply_message(reply)) else {}),
                    }
                )
                if status in UNREACHED:
                    overall = status
                    break
            for item in items[len(results) :]:
                results.append({"key": item.key, "status": "NotSent"})
            record = await calls.finish(record.id, overall, {"results": results}, None, ids)
        if overall in UNREACHED:
            raise failure(overall, record)
        return record

    async def reset(self, station_id: str, reset_type: str, key_id: int | None) -> RemoteRequestRow:
        record, _ = await self._sync(
            "reset", station_id, None, sc.Reset(reset_type), {"type": reset_type}, key_id
        )
        return record

    async def unlock_connector(
        self, station_id: str, connector_uuid: str, key_id: int | None
    ) -> RemoteRequestRow:
        connector = await self._calls.store.connector(station_id, None, connector_uuid)
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
    ) -> tuple[RemoteRequestRow, StationReply]:
        calls = self._calls
        await calls.station(station_id)
        await calls.check_online(station_id)
        async with calls.slots.held():
            record = await calls.new_record(kind, station_id, connector_id, body, key_id)
            reply = await calls.router.call(station_id, request, calls.settings.operator_timeout)
            status = record_status(reply)
            response = (
                mask_passwords({"status": reply.status, **reply.data})
                if reply.status or reply.data
                else None
            )
            record = await calls.finish(
                record.id,
                status,
                response,
                reply_message(reply),
                [reply.unique_id] if reply.unique_id else [],
            )
        if status in UNREACHED:
            raise failure(status, record)
        return record, reply

    # ---- asynchronous ------------------------------------------------------------------------

    async def remote_stop(
        self,
        *,
        session_id: str | None,
        station_id: str | None,
        transaction_id: str | None,
        key_id: int | None,
        system: bool = False,
    ) -> RemoteRequestRow:
        calls = self._calls
        session = await calls.store.session(session_id, station_id, transaction_id)
        if session is None or session.transaction_id is None:
            raise RemoteCommandError("not_found", "no such session or transaction")
        if session.status != "ACTIVE":
            raise RemoteCommandError("conflict", f"session {session.id} is {session.status}")
        await calls.check_online(session.station_id)
        # The system's own stops (stopMinutes) must not be refused by the operators' cap.
        slot = None if system else await calls.slots.take()
        record = await calls.record_with_slot(
            slot,
            "remote_stop",
            session.station_id,
            session.connector_id,
            {"sessionId": session.id, "transactionId": session.transaction_id, "system": system},
            key_id,
            session_id=session.id,
        )
        calls.send_later(record.id, session.station_id, sc.RemoteStop(session.transaction_id), slot)
        return record

    async def clear_cache(self, station_id: str, key_id: int | None) -> RemoteRequestRow:
        calls = self._calls
        await calls.station(station_id)
        await calls.check_online(station_id)
        slot = await calls.slots.take()
        record = await calls.record_with_slot(slot, "clear_cache", station_id, None, {}, key_id)
        calls.send_later(record.id, station_id, sc.ClearCache(), slot)
        return record

    async def get(self, record_id: str, kind: str | None = None) -> RemoteRequestRow:
        record = await self._calls.store.get(record_id)
        if record is None or (kind is not None and record.kind != kind):
            raise RemoteCommandError("not_found", f"no {kind or 'remote request'} {record_id}")
        return record
