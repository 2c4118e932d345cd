"""Station-initiated events: boots, statuses, transactions → stations, EVSEs and Sessions."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from chargegate.domain.clock import utcnow

from .ports import OutboxSignal

log = logging.getLogger(__name__)

# A reserved EVSE in these states cannot be honoured: the reservation is cancelled.
_INOPERATIVE = frozenset({"Faulted", "Unavailable"})


@dataclass(frozen=True, slots=True)
class MeterSample:
    wh: int
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class TransactionStart:
    """A station's start of a transaction, as StartTransaction (1.6) or a TransactionEvent
    (2.0.1) gives it; `transaction_id` None leaves the id to us (OCPP 1.6)."""

    station_id: str
    connector_id: int
    id_tag: str
    meter_start: int
    timestamp: datetime
    reservation_id: int | None = None
    transaction_id: str | None = None
    remote_start_id: int | None = None


def kwh_between(meter_start: int, meter_wh: int) -> float:
    """Energy charged between two meter readings in Wh (never negative), as OCPI's kWh."""
    return round(max(meter_wh - meter_start, 0) / 1000.0, 4)


class StationEventStore(Protocol):
    """What station events change, each call one transaction with the pushes it owes peers."""

    async def station_booted(
        self, station_id: str, ocpp_version: str, identity: dict[str, str | None]
    ) -> None: ...

    async def station_connected(self, station_id: str, ocpp_version: str) -> None: ...

    async def connector_status(
        self, station_id: str, connector_id: int, status: str, error_code: str | None
    ) -> None: ...

    async def transaction_started(self, start: TransactionStart) -> tuple[str, bool]:
        """(the OCPP transaction id, whether a push was queued)."""

    async def transaction_stopped(
        self,
        station_id: str,
        *,
        transaction_id: str,
        meter_stop: int | None,
        timestamp: datetime,
        reason: str | None,
    ) -> str:
        """ "STOPPED", "UNKNOWN" (no such transaction) or "DUPLICATE" (already stopped)."""

    async def meter_values(
        self, station_id: str, transaction_id: str, sample: MeterSample
    ) -> None: ...

    async def knows_transaction(self, station_id: str, transaction_id: str) -> bool: ...

    async def reservation_ended(self, station_id: str, ocpp_id: int, *, removed: bool) -> bool:
        """True when a result was queued for the peer."""

    async def cancel_reservations_at(
        self, station_id: str, connector_id: int | None, why: str
    ) -> int:
        """How many reservations were cancelled."""

    async def expire_reservations(self, now: datetime) -> int:
        """How many reservations expired."""

    async def configuration_reported(
        self, station_id: str, entries: list[dict[str, object]]
    ) -> None: ...


class StationEvents:
    def __init__(self, store: StationEventStore, notify: OutboxSignal) -> None:
        self._store = store
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
        await self._store.station_booted(station_id, ocpp_version, identity)

    async def connected(self, station_id: str, ocpp_version: str) -> None:
        """A socket opened: the station exists from now on, even before it boots."""
        await self._store.station_connected(station_id, ocpp_version)

    async def status(
        self, station_id: str, connector_id: int, status: str, error_code: str | None
    ) -> None:
        await self._store.connector_status(station_id, connector_id, status, error_code)
        if status in _INOPERATIVE:
            await self.cancel_reservations_at(station_id, connector_id, f"the EVSE became {status}")

    async def transaction_started(self, start: TransactionStart) -> str:
        """Store the transaction as a Session and push it; returns the OCPP transaction id.

        OCPP 1.6 leaves the id to us (`transaction_id` None): the session's integer key is used.
        A repeated StartTransaction (same station, connector, tag, time) gets the same id back.
        The Session belongs to the command it answers (by remoteStartId, reservation, or a
        recent START_SESSION for the token), whose eMSP it is pushed to.
        """
        tx_id, queued = await self._store.transaction_started(start)
        if queued:
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
        outcome = await self._store.transaction_stopped(
            station_id,
            transaction_id=transaction_id,
            meter_stop=meter_stop,
            timestamp=timestamp,
            reason=reason,
        )
        if outcome == "UNKNOWN":
            log.warning("station %s stopped unknown transaction %s", station_id, transaction_id)
        elif outcome == "DUPLICATE":
            log.info("duplicate stop of transaction %s on %s ignored", transaction_id, station_id)
        else:
            self._notify()

    async def meter_values(self, station_id: str, transaction_id: str, sample: MeterSample) -> None:
        await self._store.meter_values(station_id, transaction_id, sample)

    async def knows_transaction(self, station_id: str, transaction_id: str) -> bool:
        return await self._store.knows_transaction(station_id, transaction_id)

    async def reservation_ended(self, station_id: str, ocpp_id: int, *, removed: bool) -> None:
        """The station ended a reservation: expired (its natural end) or removed. A removal is
        told to the eMSP as CANCELED_RESERVATION at the RESERVE_NOW response_url (2.2.1)."""
        if await self._store.reservation_ended(station_id, ocpp_id, removed=removed):
            self._notify()

    async def cancel_reservations_at(
        self, station_id: str, connector_id: int | None, why: str
    ) -> None:
        """The CPO drops what it can no longer honour (an EVSE that faulted, an operator's
        lock); `connector_id` None means the whole station."""
        if await self._store.cancel_reservations_at(station_id, connector_id, why):
            self._notify()

    async def expire_reservations(self) -> None:
        """Reservations past their expiry_date end (OCPP 1.6 stations do not report it)."""
        if await self._store.expire_reservations(utcnow()):
            self._notify()

    async def configuration_reported(
        self, station_id: str, entries: list[dict[str, object]]
    ) -> None:
        await self._store.configuration_reported(station_id, entries)
