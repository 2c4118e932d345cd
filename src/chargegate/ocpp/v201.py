"""OCPP 2.0.1 station handler: the same shape as the 1.6J one (StationHandler16)."""

from __future__ import annotations

import logging
from typing import Any

from ocpp.exceptions import PropertyConstraintViolationError
from ocpp.routing import on
from ocpp.v201 import ChargePoint, call_result
from ocpp.v201.enums import Action

from chargegate.domain.clock import ocpi_datetime, utcnow
from chargegate.service.station_events import MeterSample, TransactionStart

from . import v201_translation as table
from .link import StationLinkMixin
from .station_values import energy_wh, station_time

log = logging.getLogger(__name__)

_ENERGY_REGISTER = "Energy.Active.Import.Register"
_ACCEPTED = {"status": "Accepted"}


class StationHandler201(StationLinkMixin, ChargePoint):
    ocpp_version = "2.0.1"
    table = table
    known_actions = frozenset(action.value for action in Action)

    # ---- station → CSMS ----------------------------------------------------------------------

    @on(Action.boot_notification)
    async def on_boot_notification(
        self, charging_station: dict[str, Any], reason: str, **kwargs: Any
    ) -> call_result.BootNotification:
        await self._events.boot(
            self.id,
            self.ocpp_version,
            vendor=charging_station.get("vendor_name"),
            model=charging_station.get("model"),
            serial_number=charging_station.get("serial_number"),
            firmware_version=charging_station.get("firmware_version"),
        )
        return call_result.BootNotification(
            current_time=ocpi_datetime(utcnow()),
            interval=self._heartbeat_interval,
            status="Accepted",
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self, **kwargs: Any) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=ocpi_datetime(utcnow()))

    @on(Action.status_notification)
    async def on_status_notification(
        self, timestamp: str, connector_status: str, evse_id: int, connector_id: int, **kwargs: Any
    ) -> call_result.StatusNotification:
        # One OCPI EVSE per 2.0.1 EVSE: its status is the (single) connector's.
        self.check_connector(evse_id)
        self.check_connector(connector_id)
        station_time(timestamp)
        await self._events.status(self.id, evse_id, connector_status, None)
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, id_token: dict[str, Any], **kwargs: Any) -> call_result.Authorize:
        return call_result.Authorize(id_token_info=_ACCEPTED)

    @on(Action.transaction_event)
    async def on_transaction_event(
        self,
        event_type: str,
        timestamp: str,
        trigger_reason: str,
        seq_no: int,
        transaction_info: dict[str, Any],
        **kwargs: Any,
    ) -> call_result.TransactionEvent:
        transaction_id = str(transaction_info["transaction_id"])
        when = station_time(timestamp)
        sample = _energy_sample(kwargs.get("meter_value") or [])
        token = (kwargs.get("id_token") or {}).get("id_token")
        evse = kwargs.get("evse") or {}
        self.check_connector(int(evse.get("id", 1)), lowest=1)
        self.check_connector(int(evse.get("connector_id", 1)), lowest=1)
        if event_type == "Started" or (
            event_type == "Updated"
            and not await self._events.knows_transaction(self.id, transaction_id)
        ):
            await self._events.transaction_started(
                TransactionStart(
                    self.id,
                    connector_id=int(evse.get("id", 1)),
                    id_tag=token or "",
                    meter_start=sample.wh if sample else 0,
                    timestamp=when,
                    reservation_id=kwargs.get("reservation_id"),
                    transaction_id=transaction_id,
                    remote_start_id=transaction_info.get("remote_start_id"),
                )
            )
        elif event_type == "Updated" and sample is not None:
            await self._events.meter_values(self.id, transaction_id, sample)
        if event_type == "Ended":
            await self._events.transaction_stopped(
                self.id,
                transaction_id=transaction_id,
                meter_stop=sample.wh if sample else None,
                timestamp=when,
                reason=transaction_info.get("stopped_reason") or trigger_reason,
            )
        if token:
            return call_result.TransactionEvent(id_token_info=_ACCEPTED)
        return call_result.TransactionEvent()

    @on(Action.meter_values)
    async def on_meter_values(
        self, evse_id: int, meter_value: list[dict[str, Any]], **kwargs: Any
    ) -> call_result.MeterValues:
        self.check_connector(evse_id)
        # Outside a transaction: nothing to account for; the frame is in the log.
        return call_result.MeterValues()

    @on(Action.reservation_status_update)
    async def on_reservation_status_update(
        self, reservation_id: int, reservation_update_status: str, **kwargs: Any
    ) -> call_result.ReservationStatusUpdate:
        await self._events.reservation_ended(
            self.id, reservation_id, removed=reservation_update_status == "Removed"
        )
        return call_result.ReservationStatusUpdate()

    @on(Action.notify_report)
    async def on_notify_report(
        self, request_id: int, generated_at: str, seq_no: int, **kwargs: Any
    ) -> call_result.NotifyReport:
        entries = []
        for item in kwargs.get("report_data") or []:
            component = item.get("component", {}).get("name", "")
            variable = item.get("variable", {}).get("name", "")
            for attribute in item.get("variable_attribute", []):
                if attribute.get("type", "Actual") != "Actual":
                    continue
                entries.append(
                    {
                        "key": f"{component}.{variable}",
                        "value": attribute.get("value"),
                        "readonly": attribute.get("mutability") == "ReadOnly",
                    }
                )
        if entries:
            await self._events.configuration_reported(self.id, entries)
        return call_result.NotifyReport()

    @on(Action.firmware_status_notification)
    async def on_firmware_status(
        self, status: str, **kwargs: Any
    ) -> call_result.FirmwareStatusNotification:
        return call_result.FirmwareStatusNotification()

    @on(Action.log_status_notification)
    async def on_log_status(self, status: str, **kwargs: Any) -> call_result.LogStatusNotification:
        return call_result.LogStatusNotification()

    @on(Action.notify_event)
    async def on_notify_event(
        self, generated_at: str, seq_no: int, event_data: list[dict[str, Any]], **kwargs: Any
    ) -> call_result.NotifyEvent:
        return call_result.NotifyEvent()

    @on(Action.security_event_notification)
    async def on_security_event(
        self, type: str, timestamp: str, **kwargs: Any
    ) -> call_result.SecurityEventNotification:
        log.warning("station %s security event %s at %s", self.id, type, timestamp)
        return call_result.SecurityEventNotification()


def _energy_sample(meter_value: list[dict[str, Any]]) -> MeterSample | None:
    """The last Energy.Active.Import.Register reading, in Wh."""
    found: MeterSample | None = None
    for entry in meter_value:
        for sampled in entry.get("sampled_value", []):
            if sampled.get("measurand", _ENERGY_REGISTER) != _ENERGY_REGISTER:
                continue
            value = float(sampled["value"])
            unit = (sampled.get("unit_of_measure") or {}).get("unit", "Wh")
            multiplier = (sampled.get("unit_of_measure") or {}).get("multiplier", 0)
            if not -9 <= multiplier <= 9:  # a power of ten no meter uses (and 10**huge hangs)
                raise PropertyConstraintViolationError(
                    description=f"multiplier {multiplier} is outside -9..9"
                )
            value *= 10.0**multiplier
            if unit == "kWh":
                value *= 1000
            found = MeterSample(wh=energy_wh(value), timestamp=station_time(entry["timestamp"]))
    return found
