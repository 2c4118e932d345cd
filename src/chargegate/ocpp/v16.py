"""OCPP 1.6J station handler: station-initiated messages in, CSMS calls out."""

from __future__ import annotations

import logging
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action, AuthorizationStatus, RegistrationStatus

from chargegate.domain.clock import ocpi_datetime, utcnow
from chargegate.service.station_events import MeterSample, TransactionStart

from . import v16_translation as table
from .link import StationLinkMixin
from .station_values import energy_wh, station_time

log = logging.getLogger(__name__)

_ENERGY_REGISTER = "Energy.Active.Import.Register"


class StationHandler16(StationLinkMixin, ChargePoint):
    ocpp_version = "1.6"
    table = table
    known_actions = frozenset(action.value for action in Action)

    # ---- station → CSMS ----------------------------------------------------------------------

    @on(Action.boot_notification)
    async def on_boot_notification(
        self, charge_point_vendor: str, charge_point_model: str, **kwargs: Any
    ) -> call_result.BootNotification:
        await self._events.boot(
            self.id,
            self.ocpp_version,
            vendor=charge_point_vendor,
            model=charge_point_model,
            serial_number=kwargs.get("charge_point_serial_number"),
            firmware_version=kwargs.get("firmware_version"),
        )
        return call_result.BootNotification(
            current_time=ocpi_datetime(utcnow()),
            interval=self._heartbeat_interval,
            status=RegistrationStatus.accepted,
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=ocpi_datetime(utcnow()))

    @on(Action.status_notification)
    async def on_status_notification(
        self, connector_id: int, error_code: str, status: str, **kwargs: Any
    ) -> call_result.StatusNotification:
        self.check_connector(connector_id)
        await self._events.status(self.id, connector_id, status, error_code)
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, id_tag: str) -> call_result.Authorize:
        return call_result.Authorize(id_tag_info={"status": AuthorizationStatus.accepted})

    @on(Action.start_transaction)
    async def on_start_transaction(
        self,
        connector_id: int,
        id_tag: str,
        meter_start: int,
        timestamp: str,
        reservation_id: int | None = None,
    ) -> call_result.StartTransaction:
        transaction_id = await self._events.transaction_started(
            TransactionStart(
                self.id,
                connector_id=self.check_connector(connector_id, lowest=1),
                id_tag=id_tag,
                meter_start=energy_wh(meter_start, "meterStart"),
                timestamp=station_time(timestamp),
                reservation_id=reservation_id,
            )
        )
        return call_result.StartTransaction(
            transaction_id=int(transaction_id),
            id_tag_info={"status": AuthorizationStatus.accepted},
        )

    @on(Action.stop_transaction)
    async def on_stop_transaction(
        self,
        meter_stop: int,
        timestamp: str,
        transaction_id: int,
        reason: str | None = None,
        id_tag: str | None = None,
        transaction_data: list[dict[str, Any]] | None = None,
    ) -> call_result.StopTransaction:
        await self._events.transaction_stopped(
            self.id,
            transaction_id=str(transaction_id),
            meter_stop=energy_wh(meter_stop, "meterStop"),
            timestamp=station_time(timestamp),
            reason=reason,
        )
        if id_tag is None:
            return call_result.StopTransaction()
        return call_result.StopTransaction(id_tag_info={"status": AuthorizationStatus.accepted})

    @on(Action.meter_values)
    async def on_meter_values(
        self,
        connector_id: int,
        meter_value: list[dict[str, Any]],
        transaction_id: int | None = None,
    ) -> call_result.MeterValues:
        self.check_connector(connector_id)
        sample = _energy_sample(meter_value)
        if transaction_id is not None and sample is not None:
            await self._events.meter_values(self.id, str(transaction_id), sample)
        return call_result.MeterValues()

    @on(Action.data_transfer)
    async def on_data_transfer(self, vendor_id: str, **kwargs: Any) -> call_result.DataTransfer:
        return call_result.DataTransfer(status="UnknownVendorId")

    @on(Action.firmware_status_notification)
    async def on_firmware_status(self, status: str) -> call_result.FirmwareStatusNotification:
        return call_result.FirmwareStatusNotification()

    @on(Action.diagnostics_status_notification)
    async def on_diagnostics_status(self, status: str) -> call_result.DiagnosticsStatusNotification:
        return call_result.DiagnosticsStatusNotification()


def _energy_sample(meter_value: list[dict[str, Any]]) -> MeterSample | None:
    """The last Energy.Active.Import.Register reading, in Wh (stations may report kWh)."""
    found: MeterSample | None = None
    for entry in meter_value:
        for sampled in entry.get("sampled_value", []):
            if sampled.get("measurand", _ENERGY_REGISTER) != _ENERGY_REGISTER:
                continue
            try:
                value = float(sampled["value"])
            except (KeyError, ValueError):
                continue
            if sampled.get("unit") == "kWh":
                value *= 1000
            found = MeterSample(wh=energy_wh(value), timestamp=station_time(entry["timestamp"]))
    return found
