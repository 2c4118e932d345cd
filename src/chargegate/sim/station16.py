"""One simulated OCPP 1.6J charge point: connects to a CSMS, boots, answers CALLs as scripted."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Unpack

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result, datatypes, enums
from websockets.typing import Subprotocol

from chargegate.sim.base import SimulatedStationBase, StationOptions
from chargegate.sim.configuration import Configuration, default_configuration
from chargegate.sim.state import (
    Reservation,
    StationState,
    Transaction,
    ocpp_timestamp,
    parse_timestamp,
    utc_now,
)

log = logging.getLogger(__name__)

# Used until the CSMS announces its interval in BootNotification.conf.
DEFAULT_HEARTBEAT_INTERVAL = 60

Status = enums.ChargePointStatus
# Security whitepaper key holding the Basic auth password (hexadecimal); write-only.
AUTHORIZATION_KEY = "AuthorizationKey"


class SimulatedStation16(SimulatedStationBase[Reservation, int], ChargePoint):
    """The client side of an OCPP 1.6J connection, behaving like a simple AC station.

    With `auto_transactions`, a remote start plugs in and starts a transaction, a remote stop
    or unlock ends it, a reset stops transactions and boots again.
    """

    SUBPROTOCOL = Subprotocol("ocpp1.6")

    def __init__(
        self,
        station_id: str,
        url_base: str,
        connectors: int = 2,
        *,
        model: str = "SimStation16",
        **options: Unpack[StationOptions],
    ) -> None:
        if connectors < 1:
            raise ValueError(f"a station needs at least one connector, got {connectors}")
        super().__init__(station_id, url_base, model, **options)
        self.connectors = connectors
        self.state = StationState(connectors)
        self.configuration = Configuration(
            default_configuration(connectors, DEFAULT_HEARTBEAT_INTERVAL)
        )

    # -- state shortcuts tests read ---------------------------------------------------------

    @property
    def reservations(self) -> dict[int, Reservation]:
        return self.state.reservations

    @property
    def transactions(self) -> dict[int, Transaction]:
        return self.state.transactions

    @property
    def connector_status(self) -> dict[int, str]:
        return self.state.status

    # -- boot and heartbeats ----------------------------------------------------------------

    async def _boot_and_report(self) -> None:
        await self._boot_until_accepted()
        for connector_id in range(self.connectors + 1):
            await self.send_status(connector_id, self.state.status[connector_id])

    def _outlets(self) -> str:
        return f"{self.connectors} connectors"

    async def _boot_until_accepted(self) -> None:
        while True:
            result = await self.boot()
            if result.status == enums.RegistrationStatus.accepted:
                return
            # Pending/Rejected: OCPP 1.6 §4.2 lets the station retry after the given interval.
            await asyncio.sleep(result.interval if result.interval > 0 else 10)

    def _heartbeat_seconds(self) -> float:
        if self.heartbeat_interval is not None:
            return self.heartbeat_interval
        return self.configuration.get_int(
            enums.ConfigurationKey.heartbeat_interval, DEFAULT_HEARTBEAT_INTERVAL
        )

    # -- messages the station sends ---------------------------------------------------------

    async def boot(self) -> call_result.BootNotification:
        result = await self.call(
            call.BootNotification(
                charge_point_model=self.model,
                charge_point_vendor=self.vendor,
                charge_point_serial_number=self.id[:25],
                firmware_version="chargegate-sim",
            ),
            suppress=False,
        )
        self.boot_status = result.status
        if result.status == enums.RegistrationStatus.accepted and result.interval > 0:
            self.configuration.set(enums.ConfigurationKey.heartbeat_interval, str(result.interval))
        return result

    async def send_heartbeat(self) -> str:
        result = await self.call(call.Heartbeat(), suppress=False)
        current_time: str = result.current_time
        return current_time

    async def send_status(
        self,
        connector_id: int,
        status: str,
        error_code: str = enums.ChargePointErrorCode.no_error,
    ) -> None:
        self.state.status[connector_id] = status
        await self.call(
            call.StatusNotification(
                connector_id=connector_id,
                error_code=enums.ChargePointErrorCode(error_code),
                status=enums.ChargePointStatus(status),
                timestamp=ocpp_timestamp(),
            ),
            suppress=False,
        )

    async def authorize(self, id_tag: str) -> str:
        """Send Authorize; return idTagInfo.status."""
        result = await self.call(call.Authorize(id_tag=id_tag), suppress=False)
        status: str = result.id_tag_info["status"]
        return status

    async def start_transaction(
        self, connector_id: int, id_tag: str, reservation_id: int | None = None
    ) -> int:
        """Send StartTransaction and return the CSMS's transactionId.

        Without `reservation_id`, a live reservation of `id_tag` on the connector is used, as a
        real station would; a used reservation ends.
        """
        if reservation_id is None:
            reservation = self.state.reservation_for(connector_id, id_tag)
            reservation_id = reservation.reservation_id if reservation else None
        meter_start = self.state.meter_wh[connector_id]
        started_at = utc_now()
        result = await self.call(
            call.StartTransaction(
                connector_id=connector_id,
                id_tag=id_tag,
                meter_start=meter_start,
                timestamp=ocpp_timestamp(started_at),
                reservation_id=reservation_id,
            ),
            suppress=False,
        )
        transaction_id: int = result.transaction_id
        self.state.transactions[transaction_id] = Transaction(
            transaction_id=transaction_id,
            connector_id=connector_id,
            id_tag=id_tag,
            meter_start=meter_start,
            started_at=started_at,
            reservation_id=reservation_id,
            authorization=result.id_tag_info["status"],
        )
        if reservation_id is not None:
            self._forget_reservation(reservation_id)
        if self.meter_interval:
            self._start_sampler(transaction_id, self.meter_interval)
        return transaction_id

    async def stop_transaction(self, transaction_id: int, reason: str = "Local") -> None:
        """Send StopTransaction; the final meter reading adds one tick of energy."""
        tx = self.state.transactions.pop(transaction_id, None)
        if tx is None:
            raise ValueError(f"{self.id} has no transaction {transaction_id}")
        self._stop_sampler(transaction_id)
        meter_stop = self._tick(tx.connector_id)
        await self.call(
            call.StopTransaction(
                meter_stop=meter_stop,
                timestamp=ocpp_timestamp(),
                transaction_id=transaction_id,
                reason=enums.Reason(reason),
                id_tag=tx.id_tag,
            ),
            suppress=False,
        )

    async def send_meter_values(
        self,
        connector_id: int,
        transaction_id: int | None,
        wh: int,
        context: str = enums.ReadingContext.sample_periodic,
    ) -> None:
        """Report `wh` as the connector's Energy.Active.Import.Register (and remember it)."""
        if connector_id in self.state.meter_wh:
            self.state.meter_wh[connector_id] = wh
        sample = datatypes.SampledValue(
            value=str(wh),
            context=enums.ReadingContext(context),
            measurand=enums.Measurand.energy_active_import_register,
            location=enums.Location.outlet,
            unit=enums.UnitOfMeasure.wh,
        )
        await self.call(
            call.MeterValues(
                connector_id=connector_id,
                meter_value=[
                    datatypes.MeterValue(timestamp=ocpp_timestamp(), sampled_value=[sample])
                ],
                transaction_id=transaction_id,
            ),
            suppress=False,
        )

    def _tick(self, connector_id: int) -> int:
        self.state.meter_wh[connector_id] += self.meter_wh_per_tick
        return self.state.meter_wh[connector_id]

    async def _sample_meter(self, transaction_id: int, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            tx = self.state.transactions.get(transaction_id)
            if tx is None:
                return
            await self.send_meter_values(
                tx.connector_id, transaction_id, self._tick(tx.connector_id)
            )

    # -- CALL handlers ----------------------------------------------------------------------

    @on(enums.Action.remote_start_transaction)
    def on_remote_start_transaction(
        self,
        id_tag: str,
        call_unique_id: str,
        connector_id: int | None = None,
        **_: Any,
    ) -> call_result.RemoteStartTransaction:
        status = self._answer(call_unique_id, enums.Action.remote_start_transaction)
        if status == enums.RemoteStartStopStatus.accepted:
            target = connector_id if connector_id is not None else self.state.pick_connector(id_tag)
            if target is None or not self._can_start(target, id_tag):
                status = enums.RemoteStartStopStatus.rejected
            elif self.auto_transactions:
                self._starting.add(target)
                self._after_answer(call_unique_id, lambda: self._remote_start_flow(target, id_tag))
        return call_result.RemoteStartTransaction(status=enums.RemoteStartStopStatus(status))

    def _can_start(self, connector_id: int, id_tag: str) -> bool:
        if not self.state.has_connector(connector_id) or connector_id in self._starting:
            return False
        if self.state.transaction_on(connector_id) is not None:
            return False
        if self.state.status[connector_id] in (Status.unavailable, Status.faulted):
            return False
        reservation = self.state.reservation_on(connector_id)
        return reservation is None or reservation.id_tag == id_tag

    async def _remote_start_flow(self, connector_id: int, id_tag: str) -> None:
        try:
            if self.configuration.get_bool(enums.ConfigurationKey.authorize_remote_tx_requests):
                if await self.authorize(id_tag) != enums.AuthorizationStatus.accepted:
                    return
            await self.send_status(connector_id, Status.preparing)
            transaction_id = await self.start_transaction(connector_id, id_tag)
        finally:
            self._starting.discard(connector_id)
        tx = self.state.transactions[transaction_id]
        if tx.authorization != enums.AuthorizationStatus.accepted and self.configuration.get_bool(
            enums.ConfigurationKey.stop_transaction_on_invalid_id
        ):
            await self._end_transaction(transaction_id, enums.Reason.de_authorized)
            return
        await self.send_status(connector_id, Status.charging)

    async def _end_transaction(self, transaction_id: int, reason: str) -> None:
        tx = self.state.transactions.get(transaction_id)
        if tx is None:
            return  # already ended by a command that arrived just before
        connector_id = tx.connector_id
        await self.stop_transaction(transaction_id, reason)
        await self.send_status(connector_id, Status.finishing)
        await self.send_status(connector_id, Status.available)

    @on(enums.Action.remote_stop_transaction)
    def on_remote_stop_transaction(
        self, transaction_id: int, call_unique_id: str, **_: Any
    ) -> call_result.RemoteStopTransaction:
        status = self._answer(call_unique_id, enums.Action.remote_stop_transaction)
        if status == enums.RemoteStartStopStatus.accepted:
            if transaction_id not in self.state.transactions:
                status = enums.RemoteStartStopStatus.rejected
            elif self.auto_transactions:
                self._after_answer(
                    call_unique_id,
                    lambda: self._end_transaction(transaction_id, enums.Reason.remote),
                )
        return call_result.RemoteStopTransaction(status=enums.RemoteStartStopStatus(status))

    @on(enums.Action.reserve_now)
    def on_reserve_now(
        self,
        connector_id: int,
        expiry_date: str,
        id_tag: str,
        reservation_id: int,
        call_unique_id: str,
        parent_id_tag: str | None = None,
        **_: Any,
    ) -> call_result.ReserveNow:
        status = self._answer(call_unique_id, enums.Action.reserve_now)
        if status == enums.ReservationStatus.accepted:
            status = self._reservation_verdict(connector_id, reservation_id)
        if status == enums.ReservationStatus.accepted:
            try:
                expiry = parse_timestamp(expiry_date)
            except ValueError:
                status = enums.ReservationStatus.rejected
            else:
                # Stored now rather than in the follow-up, so that a CALL right behind sees it.
                reservation = Reservation(
                    reservation_id, connector_id, id_tag, expiry, parent_id_tag
                )
                replaced = self._forget_reservation(reservation_id)
                self.state.reservations[reservation_id] = reservation
                self._start_expiry(reservation)
                self._after_answer(
                    call_unique_id, lambda: self._show_reservation(reservation, replaced)
                )
        return call_result.ReserveNow(status=enums.ReservationStatus(status))

    def _reservation_verdict(self, connector_id: int, reservation_id: int) -> str:
        """What a willing station answers, given the connector's state."""
        if connector_id == 0:
            zero_ok = self.configuration.get_bool(
                enums.ConfigurationKey.reserve_connector_zero_supported
            )
            return enums.ReservationStatus.accepted if zero_ok else enums.ReservationStatus.rejected
        if not self.state.has_connector(connector_id):
            return enums.ReservationStatus.rejected
        status = self.state.status[connector_id]
        if status == Status.faulted:
            return enums.ReservationStatus.faulted
        if status == Status.unavailable:
            return enums.ReservationStatus.unavailable
        if self.state.transaction_on(connector_id) or connector_id in self._starting:
            return enums.ReservationStatus.occupied
        holder = self.state.reservation_on(connector_id)
        if holder is not None and holder.reservation_id != reservation_id:
            return enums.ReservationStatus.occupied
        return enums.ReservationStatus.accepted

    async def _show_reservation(
        self, reservation: Reservation, replaced: Reservation | None
    ) -> None:
        if replaced is not None and replaced.connector_id != reservation.connector_id:
            await self._release_connector(replaced.connector_id)
        connector_id = reservation.connector_id
        if connector_id > 0 and self.state.status[connector_id] == Status.available:
            await self.send_status(connector_id, Status.reserved)

    async def _release_connector(self, connector_id: int) -> None:
        """Back to Available when the last reservation holding the connector is gone."""
        if connector_id == 0 or self.state.status[connector_id] != Status.reserved:
            return
        if self.state.reservation_on(connector_id) is None:
            await self.send_status(connector_id, Status.available)

    async def _expire(self, reservation: Reservation) -> None:
        delay = (reservation.expiry - utc_now()).total_seconds()
        await asyncio.sleep(max(delay, 0))
        if self.state.reservations.get(reservation.reservation_id) is reservation:
            self._forget_reservation(reservation.reservation_id)
            log.info("%s: reservation %d expired", self.id, reservation.reservation_id)
            await self._release_connector(reservation.connector_id)

    @on(enums.Action.cancel_reservation)
    def on_cancel_reservation(
        self, reservation_id: int, call_unique_id: str, **_: Any
    ) -> call_result.CancelReservation:
        status = self._answer(call_unique_id, enums.Action.cancel_reservation)
        reservation = self.state.reservations.get(reservation_id)
        if reservation is None or reservation.expired():
            # OCPP 1.6 §5.3: an unknown reservation is Rejected whatever the script says.
            status = enums.CancelReservationStatus.rejected
        elif status == enums.CancelReservationStatus.accepted:
            self._forget_reservation(reservation_id)
            self._after_answer(
                call_unique_id, lambda: self._release_connector(reservation.connector_id)
            )
        return call_result.CancelReservation(status=enums.CancelReservationStatus(status))

    @on(enums.Action.unlock_connector)
    def on_unlock_connector(
        self, connector_id: int, call_unique_id: str, **_: Any
    ) -> call_result.UnlockConnector:
        status = self._answer(call_unique_id, enums.Action.unlock_connector)
        if status == enums.UnlockStatus.unlocked:
            tx = self.state.transaction_on(connector_id)
            if not self.state.has_connector(connector_id):
                status = enums.UnlockStatus.not_supported
            elif tx is not None and self.auto_transactions:
                # OCPP 1.6 §5.18: a transaction on the connector is stopped before it unlocks.
                self._after_answer(
                    call_unique_id,
                    lambda: self._end_transaction(tx.transaction_id, enums.Reason.unlock_command),
                )
        return call_result.UnlockConnector(status=enums.UnlockStatus(status))

    @on(enums.Action.reset)
    def on_reset(self, type: str, call_unique_id: str, **_: Any) -> call_result.Reset:
        status = self._answer(call_unique_id, enums.Action.reset)
        if status == enums.ResetStatus.accepted and self.auto_transactions:
            self._after_answer(call_unique_id, lambda: self._reboot(enums.ResetType(type)))
        return call_result.Reset(status=enums.ResetStatus(status))

    async def _reboot(self, reset_type: enums.ResetType) -> None:
        """Stop every transaction, then boot and report again.

        The socket stays open: a real station reconnects after a reset, but re-using the
        connection keeps tests and benchmarks free of reconnect timing.
        """
        reason = (
            enums.Reason.hard_reset
            if reset_type == enums.ResetType.hard
            else enums.Reason.soft_reset
        )
        for transaction_id in list(self.state.transactions):
            await self.stop_transaction(transaction_id, reason)
        self.ready.clear()
        await self._boot_until_accepted()
        for connector_id in range(self.connectors + 1):
            reserved = connector_id > 0 and self.state.reservation_on(connector_id) is not None
            await self.send_status(connector_id, Status.reserved if reserved else Status.available)
        self.ready.set()

    @on(enums.Action.get_configuration)
    def on_get_configuration(
        self, key: list[str] | None = None, **_: Any
    ) -> call_result.GetConfiguration:
        known, unknown = self.configuration.lookup(key)
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on(enums.Action.change_configuration)
    def on_change_configuration(
        self, key: str, value: str, call_unique_id: str, **_: Any
    ) -> call_result.ChangeConfiguration:
        status = self._answer(call_unique_id, enums.Action.change_configuration)
        if key == AUTHORIZATION_KEY:
            # Write-only and never stored in the configuration GetConfiguration reports.
            if status == enums.ConfigurationStatus.accepted:
                status = self._take_authorization_key(value)
            return call_result.ChangeConfiguration(status=enums.ConfigurationStatus(status))
        if status == enums.ConfigurationStatus.accepted:
            status = self.configuration.check_change(key)
        if status in (
            enums.ConfigurationStatus.accepted,
            enums.ConfigurationStatus.reboot_required,
        ):
            self.configuration.set(key, value)
        return call_result.ChangeConfiguration(status=enums.ConfigurationStatus(status))

    def _take_authorization_key(self, value: str) -> str:
        """1.6 security whitepaper: 16 to 20 bytes as hexadecimal digits; the bytes are the
        password."""
        if not re.fullmatch(r"(?:[0-9A-Fa-f]{2}){16,20}", value):
            return enums.ConfigurationStatus.rejected
        self.take_password(bytes.fromhex(value))
        return enums.ConfigurationStatus.accepted

    @on(enums.Action.clear_cache)
    def on_clear_cache(self, call_unique_id: str, **_: Any) -> call_result.ClearCache:
        status = self._answer(call_unique_id, enums.Action.clear_cache)
        return call_result.ClearCache(status=enums.ClearCacheStatus(status))

    @on(enums.Action.trigger_message)
    def on_trigger_message(
        self,
        requested_message: str,
        call_unique_id: str,
        connector_id: int | None = None,
        **_: Any,
    ) -> call_result.TriggerMessage:
        status = self._answer(call_unique_id, enums.Action.trigger_message)
        if status == enums.TriggerMessageStatus.accepted:
            if connector_id is not None and connector_id not in self.state.status:
                status = enums.TriggerMessageStatus.rejected
            else:
                trigger = enums.MessageTrigger(requested_message)
                self._after_answer(
                    call_unique_id, lambda: self._send_triggered(trigger, connector_id)
                )
        return call_result.TriggerMessage(status=enums.TriggerMessageStatus(status))

    async def _send_triggered(
        self, trigger: enums.MessageTrigger, connector_id: int | None
    ) -> None:
        if trigger == enums.MessageTrigger.boot_notification:
            await self.boot()
        elif trigger == enums.MessageTrigger.heartbeat:
            await self.send_heartbeat()
        elif trigger == enums.MessageTrigger.status_notification:
            targets = [connector_id] if connector_id is not None else list(self.state.status)
            for target in targets:
                await self.send_status(target, self.state.status[target])
        elif trigger == enums.MessageTrigger.meter_values:
            targets = [connector_id] if connector_id else list(self.state.connector_ids)
            for target in targets:
                tx = self.state.transaction_on(target)
                wh = self._tick(target) if tx is not None else self.state.meter_wh[target]
                await self.send_meter_values(
                    target,
                    tx.transaction_id if tx is not None else None,
                    wh,
                    context=enums.ReadingContext.trigger,
                )
        elif trigger == enums.MessageTrigger.diagnostics_status_notification:
            await self.call(
                call.DiagnosticsStatusNotification(status=enums.DiagnosticsStatus.idle),
                suppress=False,
            )
        elif trigger == enums.MessageTrigger.firmware_status_notification:
            await self.call(
                call.FirmwareStatusNotification(status=enums.FirmwareStatus.idle), suppress=False
            )
