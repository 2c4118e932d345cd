"""One simulated OCPP 2.0.1 charging station: connects to a CSMS, boots, answers CALLs as
scripted."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from typing import Any, TypeAlias, Unpack

from ocpp.routing import on
from ocpp.v201 import ChargePoint, call, call_result, datatypes, enums
from websockets.typing import Subprotocol

from chargegate.sim import device_model as dm
from chargegate.sim.base import SimulatedStationBase, StationOptions
from chargegate.sim.state import ocpp_timestamp, parse_timestamp, utc_now
from chargegate.sim.state201 import (
    CONNECTOR_ID,
    Reservation201,
    StationState201,
    Transaction201,
    same_token,
)

log = logging.getLogger(__name__)

# Used until the CSMS announces its interval in BootNotification's response.
DEFAULT_HEARTBEAT_INTERVAL = 60
# A bare string given to the direct methods stands for an RFID card presented at the station.
LOCAL_TOKEN_TYPE = enums.IdTokenEnumType.iso14443

Action = enums.Action
Status = enums.ConnectorStatusEnumType
Trigger = enums.TriggerReasonEnumType
Reason = enums.ReasonEnumType
Context = enums.ReadingContextEnumType

# What made the transaction end, as TransactionEvent Ended's triggerReason, per stoppedReason.
STOP_TRIGGERS: dict[str, str] = {
    Reason.local: Trigger.stop_authorized,
    Reason.remote: Trigger.remote_stop,
    Reason.de_authorized: Trigger.deauthorized,
    Reason.immediate_reset: Trigger.reset_command,
    Reason.ev_disconnected: Trigger.ev_communication_lost,
    Reason.energy_limit_reached: Trigger.energy_limit_reached,
    Reason.time_limit_reached: Trigger.time_limit_reached,
}

# What TriggerMessage can ask of this station; anything else is answered NotImplemented.
TRIGGERABLE: frozenset[str] = frozenset(
    {
        enums.MessageTriggerEnumType.boot_notification,
        enums.MessageTriggerEnumType.heartbeat,
        enums.MessageTriggerEnumType.status_notification,
        enums.MessageTriggerEnumType.meter_values,
        enums.MessageTriggerEnumType.transaction_event,
    }
)

TokenLike: TypeAlias = str | datatypes.IdTokenType | Mapping[str, Any]


def as_id_token(token: TokenLike) -> datatypes.IdTokenType:
    """An IdTokenType from a bare string, a dataclass, or the snake_case dict of a handler."""
    if isinstance(token, datatypes.IdTokenType):
        return token
    if isinstance(token, str):
        return datatypes.IdTokenType(id_token=token, type=LOCAL_TOKEN_TYPE)
    return datatypes.IdTokenType(
        id_token=token["id_token"],
        type=enums.IdTokenEnumType(token["type"]),
        additional_info=token.get("additional_info"),
    )


class SimulatedStation201(SimulatedStationBase[Reservation201, str], ChargePoint):
    """The client side of an OCPP 2.0.1 connection, behaving like a simple AC station with
    `evses` EVSEs of one connector each (evseId n, connectorId 1).

    With `auto_transactions`, a remote start starts a transaction, a remote stop ends it, a
    reset ends transactions and boots again.
    """

    SUBPROTOCOL = Subprotocol("ocpp2.0.1")

    def __init__(
        self,
        station_id: str,
        url_base: str,
        evses: int = 2,
        *,
        model: str = "SimStation201",
        **options: Unpack[StationOptions],
    ) -> None:
        if evses < 1:
            raise ValueError(f"a station needs at least one EVSE, got {evses}")
        super().__init__(station_id, url_base, model, **options)
        self.evses = evses
        self.state = StationState201(evses)
        self.device_model = dm.DeviceModel(
            dm.default_device_model(evses, DEFAULT_HEARTBEAT_INTERVAL, self.vendor, model)
        )
        # Resets answered Scheduled, done once their scope is idle: an EVSE id, None = station.
        self._pending_resets: set[int | None] = set()

    # -- state shortcuts tests read ---------------------------------------------------------

    @property
    def reservations(self) -> dict[int, Reservation201]:
        return self.state.reservations

    @property
    def transactions(self) -> dict[str, Transaction201]:
        return self.state.transactions

    @property
    def evse_status(self) -> dict[int, str]:
        return self.state.status

    # -- boot and heartbeats ----------------------------------------------------------------

    async def _boot_and_report(self, reason: str = enums.BootReasonEnumType.power_up) -> None:
        while True:
            result = await self.boot(reason)
            if result.status == enums.RegistrationStatusEnumType.accepted:
                break
            # Pending/Rejected: B02/B03 let the station retry after the given interval.
            await asyncio.sleep(result.interval if result.interval > 0 else 10)
        for evse_id in self.state.evse_ids:
            await self.send_status(evse_id, self.state.status[evse_id])

    def _outlets(self) -> str:
        return f"{self.evses} EVSEs"

    def _heartbeat_seconds(self) -> float:
        if self.heartbeat_interval is not None:
            return self.heartbeat_interval
        return self.device_model.get_int(
            dm.OCPP_COMM_CTRLR, dm.HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_INTERVAL
        )

    # -- messages the station sends ---------------------------------------------------------

    async def boot(
        self, reason: str = enums.BootReasonEnumType.power_up
    ) -> call_result.BootNotification:
        result = await self.call(
            call.BootNotification(
                charging_station=datatypes.ChargingStationType(
                    vendor_name=self.vendor,
                    model=self.model,
                    serial_number=self.id[:25],
                    firmware_version="chargegate-sim",
                ),
                reason=enums.BootReasonEnumType(reason),
            ),
            suppress=False,
        )
        self.boot_status = result.status
        if result.status == enums.RegistrationStatusEnumType.accepted and result.interval > 0:
            self.device_model.set(dm.OCPP_COMM_CTRLR, dm.HEARTBEAT_INTERVAL, str(result.interval))
        return result

    async def send_heartbeat(self) -> str:
        result = await self.call(call.Heartbeat(), suppress=False)
        current_time: str = result.current_time
        return current_time

    async def send_status(self, evse_id: int, status: str) -> None:
        """StatusNotification for the connector of `evse_id` (and remember the status)."""
        if not self.state.has_evse(evse_id):
            raise ValueError(f"{self.id} has no EVSE {evse_id}")
        self.state.status[evse_id] = status
        self.device_model.set(dm.EVSE, dm.AVAILABILITY_STATE, status, evse_id=evse_id)
        await self.call(
            call.StatusNotification(
                timestamp=ocpp_timestamp(),
                connector_status=Status(status),
                evse_id=evse_id,
                connector_id=CONNECTOR_ID,
            ),
            suppress=False,
        )

    async def authorize(self, id_token: TokenLike) -> str:
        """Send Authorize; return idTokenInfo.status."""
        result = await self.call(call.Authorize(id_token=as_id_token(id_token)), suppress=False)
        status: str = result.id_token_info["status"]
        return status

    async def send_reservation_update(self, reservation_id: int, status: str) -> None:
        await self.call(
            call.ReservationStatusUpdate(
                reservation_id=reservation_id,
                reservation_update_status=enums.ReservationUpdateStatusEnumType(status),
            ),
            suppress=False,
        )

    async def start_transaction(
        self,
        evse_id: int,
        id_token: TokenLike,
        remote_start_id: int | None = None,
        reservation_id: int | None = None,
    ) -> str:
        """Send TransactionEvent Started and return the new transactionId.

        Without `reservation_id`, a live reservation of the token on the EVSE (or on any EVSE)
        is used, as a real station would; a used reservation ends.
        """
        if not self.state.has_evse(evse_id):
            raise ValueError(f"{self.id} has no EVSE {evse_id}")
        token = as_id_token(id_token)
        if reservation_id is None:
            reservation = self.state.reservation_for(evse_id, token)
            reservation_id = reservation.reservation_id if reservation else None
        tx = Transaction201(
            transaction_id=str(uuid.uuid4()),
            evse_id=evse_id,
            id_token=token,
            meter_start=self.state.meter_wh[evse_id],
            started_at=utc_now(),
            remote_start_id=remote_start_id,
            reservation_id=reservation_id,
        )
        # Known (and the reservation used up) before the CSMS hears of it, so that a CALL sent
        # right after the Started event sees the station as it now is.
        self.state.transactions[tx.transaction_id] = tx
        if reservation_id is not None:
            self._forget_reservation(reservation_id)
        trigger = Trigger.remote_start if remote_start_id is not None else Trigger.authorized
        try:
            result = await self._transaction_event(
                tx,
                enums.TransactionEventEnumType.started,
                trigger,
                tx.meter_start,
                Context.transaction_begin,
            )
        except BaseException:
            self.state.transactions.pop(tx.transaction_id, None)
            raise
        if result.id_token_info:
            tx.authorization = result.id_token_info["status"]
        if self.meter_interval:
            self._start_sampler(tx.transaction_id, self.meter_interval)
        return tx.transaction_id

    async def stop_transaction(
        self, transaction_id: str, reason: str = Reason.local, trigger_reason: str | None = None
    ) -> None:
        """Send TransactionEvent Ended; the final meter reading adds one tick of energy.

        Without `trigger_reason`, the one that usually goes with `reason` is used."""
        tx = self.state.transactions.pop(transaction_id, None)
        if tx is None:
            raise ValueError(f"{self.id} has no transaction {transaction_id}")
        self._stop_sampler(transaction_id)
        trigger = trigger_reason or STOP_TRIGGERS.get(reason, Trigger.abnormal_condition)
        await self._transaction_event(
            tx,
            enums.TransactionEventEnumType.ended,
            trigger,
            self._tick(tx.evse_id),
            Context.transaction_end,
            stopped_reason=reason,
        )
        if self._pending_resets:
            self._spawn(self._reset_when_idle(), "scheduled-reset")

    async def send_meter_values(
        self,
        transaction_id: str,
        wh: int | None = None,
        context: str = Context.sample_periodic,
        trigger_reason: str = Trigger.meter_value_periodic,
    ) -> None:
        """TransactionEvent Updated reporting `wh` (default: one tick more) as the EVSE's
        Energy.Active.Import.Register, and remembering it."""
        tx = self.state.transactions.get(transaction_id)
        if tx is None:
            raise ValueError(f"{self.id} has no transaction {transaction_id}")
        if wh is None:
            wh = self._tick(tx.evse_id)
        else:
            self.state.meter_wh[tx.evse_id] = wh
        await self._transaction_event(
            tx, enums.TransactionEventEnumType.updated, trigger_reason, wh, context
        )

    async def _transaction_event(
        self,
        tx: Transaction201,
        event_type: enums.TransactionEventEnumType,
        trigger: str,
        wh: int,
        context: str,
        stopped_reason: str | None = None,
    ) -> call_result.TransactionEvent:
        started = event_type == enums.TransactionEventEnumType.started
        ended = event_type == enums.TransactionEventEnumType.ended
        charging = enums.ChargingStateEnumType
        result: call_result.TransactionEvent = await self.call(
            call.TransactionEvent(
                event_type=event_type,
                timestamp=ocpp_timestamp(),
                trigger_reason=Trigger(trigger),
                seq_no=tx.take_seq_no(),
                transaction_info=datatypes.TransactionType(
                    transaction_id=tx.transaction_id,
                    charging_state=charging.ev_connected if ended else charging.charging,
                    stopped_reason=Reason(stopped_reason) if stopped_reason else None,
                    remote_start_id=tx.remote_start_id if started else None,
                ),
                meter_value=[self._meter_value(wh, context)],
                # The EVSE, the token and the reservation go in the event where they become
                # known, which for this station is always the first.
                reservation_id=tx.reservation_id if started else None,
                evse=(
                    datatypes.EVSEType(id=tx.evse_id, connector_id=CONNECTOR_ID)
                    if started
                    else None
                ),
                id_token=tx.id_token if started else None,
            ),
            suppress=False,
        )
        return result

    def _meter_value(self, wh: int, context: str) -> datatypes.MeterValueType:
        return datatypes.MeterValueType(
            timestamp=ocpp_timestamp(),
            sampled_value=[
                datatypes.SampledValueType(
                    value=wh,
                    context=Context(context),
                    measurand=enums.MeasurandEnumType.energy_active_import_register,
                    location=enums.LocationEnumType.outlet,
                    unit_of_measure=datatypes.UnitOfMeasureType(
                        unit=enums.StandardizedUnitsOfMeasureType.wh
                    ),
                )
            ],
        )

    def _tick(self, evse_id: int) -> int:
        self.state.meter_wh[evse_id] += self.meter_wh_per_tick
        return self.state.meter_wh[evse_id]

    async def _sample_meter(self, transaction_id: str, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            if transaction_id not in self.state.transactions:
                return
            await self.send_meter_values(transaction_id)

    # -- remote start and stop --------------------------------------------------------------

    @on(Action.request_start_transaction)
    def on_request_start_transaction(
        self,
        id_token: dict[str, Any],
        remote_start_id: int,
        call_unique_id: str,
        evse_id: int | None = None,
        **_: Any,
    ) -> call_result.RequestStartTransaction:
        status = self._answer(call_unique_id, Action.request_start_transaction)
        token = as_id_token(id_token)
        if status == enums.RequestStartStopStatusEnumType.accepted:
            target = evse_id if evse_id is not None else self.state.pick_evse(token)
            if target is None or not self._can_start(target, token):
                status = enums.RequestStartStopStatusEnumType.rejected
            elif self.auto_transactions:
                self._starting.add(target)
                self._after_answer(
                    call_unique_id,
                    lambda: self._remote_start_flow(target, token, remote_start_id),
                )
        return call_result.RequestStartTransaction(
            status=enums.RequestStartStopStatusEnumType(status)
        )

    def _can_start(self, evse_id: int, token: datatypes.IdTokenType) -> bool:
        if not self.state.has_evse(evse_id) or evse_id in self._starting:
            return False
        if self.state.transaction_on(evse_id) is not None:
            return False
        if self.state.status[evse_id] in (Status.unavailable, Status.faulted):
            return False
        reservation = self.state.reservation_on(evse_id)
        return reservation is None or same_token(reservation.id_token, token)

    async def _remote_start_flow(
        self, evse_id: int, token: datatypes.IdTokenType, remote_start_id: int
    ) -> None:
        try:
            if self.device_model.get_bool(dm.AUTH_CTRLR, dm.AUTHORIZE_REMOTE_START):
                if await self.authorize(token) != enums.AuthorizationStatusEnumType.accepted:
                    return
            transaction_id = await self.start_transaction(
                evse_id, token, remote_start_id=remote_start_id
            )
        finally:
            self._starting.discard(evse_id)
            if self._pending_resets:
                # An OnIdle reset may have waited only for this start, which did not happen.
                self._spawn(self._reset_when_idle(), "scheduled-reset")
        tx = self.state.transactions.get(transaction_id)
        if tx is None:
            return  # already ended by a command that arrived meanwhile
        if tx.authorization != enums.AuthorizationStatusEnumType.accepted:
            if self.device_model.get_bool(dm.TX_CTRLR, dm.STOP_TX_ON_INVALID_ID):
                await self._end_transaction(transaction_id, Reason.de_authorized)
                return
        await self.send_status(evse_id, Status.occupied)

    async def _end_transaction(self, transaction_id: str, reason: str) -> None:
        tx = self.state.transactions.get(transaction_id)
        if tx is None:
            return  # already ended by a command that arrived just before
        await self.stop_transaction(transaction_id, reason)
        await self.send_status(tx.evse_id, self._idle_status(tx.evse_id))

    def _idle_status(self, evse_id: int) -> str:
        return Status.reserved if self.state.reservation_on(evse_id) else Status.available

    @on(Action.request_stop_transaction)
    def on_request_stop_transaction(
        self, transaction_id: str, call_unique_id: str, **_: Any
    ) -> call_result.RequestStopTransaction:
        status = self._answer(call_unique_id, Action.request_stop_transaction)
        if status == enums.RequestStartStopStatusEnumType.accepted:
            if transaction_id not in self.state.transactions:
                status = enums.RequestStartStopStatusEnumType.rejected
            elif self.auto_transactions:
                self._after_answer(
                    call_unique_id, lambda: self._end_transaction(transaction_id, Reason.remote)
                )
        return call_result.RequestStopTransaction(
            status=enums.RequestStartStopStatusEnumType(status)
        )

    # -- reservations -----------------------------------------------------------------------

    @on(Action.reserve_now)
    def on_reserve_now(
        self,
        id: int,
        expiry_date_time: str,
        id_token: dict[str, Any],
        call_unique_id: str,
        evse_id: int | None = None,
        group_id_token: dict[str, Any] | None = None,
        **_: Any,
    ) -> call_result.ReserveNow:
        status = self._answer(call_unique_id, Action.reserve_now)
        if status == enums.ReserveNowStatusEnumType.accepted:
            status = self._reservation_verdict(evse_id, id)
        if status == enums.ReserveNowStatusEnumType.accepted:
            try:
                expiry = parse_timestamp(expiry_date_time)
            except ValueError:
                status = enums.ReserveNowStatusEnumType.rejected
            else:
                # Stored now rather than in the follow-up, so that a CALL right behind sees it.
                reservation = Reservation201(
                    id,
                    evse_id,
                    as_id_token(id_token),
                    expiry,
                    as_id_token(group_id_token) if group_id_token else None,
                )
                replaced = self._forget_reservation(id)
                self.state.reservations[id] = reservation
                self._start_expiry(reservation)
                self._after_answer(
                    call_unique_id, lambda: self._show_reservation(reservation, replaced)
                )
        return call_result.ReserveNow(status=enums.ReserveNowStatusEnumType(status))

    def _reservation_verdict(self, evse_id: int | None, reservation_id: int) -> str:
        """What a willing station answers, given the state of the EVSE(s)."""
        answer = enums.ReserveNowStatusEnumType
        if not self.device_model.get_bool(dm.RESERVATION_CTRLR, "Enabled"):
            return answer.rejected
        if evse_id is not None:
            return self._evse_verdict(evse_id, reservation_id)
        if not self.device_model.get_bool(dm.RESERVATION_CTRLR, dm.NON_EVSE_SPECIFIC):
            return answer.rejected
        verdicts = [self._evse_verdict(e, reservation_id) for e in self.state.evse_ids]
        free = verdicts.count(answer.accepted)
        # H01: every reservation without EVSE must still find a free EVSE when its driver comes.
        others = sum(
            1
            for r in self.state.reservations.values()
            if r.evse_id is None and r.reservation_id != reservation_id and not r.expired()
        )
        if free > others:
            return answer.accepted
        for uniform in (answer.faulted, answer.unavailable):
            if all(v == uniform for v in verdicts):
                return uniform
        return answer.occupied

    def _evse_verdict(self, evse_id: int, reservation_id: int) -> str:
        answer = enums.ReserveNowStatusEnumType
        if not self.state.has_evse(evse_id):
            return answer.rejected
        status = self.state.status[evse_id]
        if status == Status.faulted:
            return answer.faulted
        if status == Status.unavailable:
            return answer.unavailable
        if status == Status.occupied or evse_id in self._starting:
            return answer.occupied
        if self.state.transaction_on(evse_id) is not None:
            return answer.occupied
        holder = self.state.reservation_on(evse_id)
        if holder is not None and holder.reservation_id != reservation_id:
            return answer.occupied
        return answer.accepted

    async def _show_reservation(
        self, reservation: Reservation201, replaced: Reservation201 | None
    ) -> None:
        if replaced is not None and replaced.evse_id != reservation.evse_id:
            await self._release_evse(replaced.evse_id)
        evse_id = reservation.evse_id
        if evse_id is not None and self.state.status[evse_id] == Status.available:
            await self.send_status(evse_id, Status.reserved)

    async def _release_evse(self, evse_id: int | None) -> None:
        """Back to Available when the last reservation holding the EVSE is gone."""
        if evse_id is None or self.state.status[evse_id] != Status.reserved:
            return
        if self.state.reservation_on(evse_id) is None:
            await self.send_status(evse_id, Status.available)

    async def _expire(self, reservation: Reservation201) -> None:
        delay = (reservation.expiry - utc_now()).total_seconds()
        await asyncio.sleep(max(delay, 0))
        if self.state.reservations.get(reservation.reservation_id) is reservation:
            self._forget_reservation(reservation.reservation_id)
            log.info("%s: reservation %d expired", self.id, reservation.reservation_id)
            await self.send_reservation_update(
                reservation.reservation_id, enums.ReservationUpdateStatusEnumType.expired
            )
            await self._release_evse(reservation.evse_id)

    async def remove_reservation(self, reservation_id: int) -> None:
        """End a reservation on the station's own initiative (e.g. the EVSE became faulted):
        ReservationStatusUpdate Removed, then the EVSE is Available again."""
        reservation = self._forget_reservation(reservation_id)
        if reservation is None:
            raise ValueError(f"{self.id} has no reservation {reservation_id}")
        await self.send_reservation_update(
            reservation_id, enums.ReservationUpdateStatusEnumType.removed
        )
        await self._release_evse(reservation.evse_id)

    @on(Action.cancel_reservation)
    def on_cancel_reservation(
        self, reservation_id: int, call_unique_id: str, **_: Any
    ) -> call_result.CancelReservation:
        status = self._answer(call_unique_id, Action.cancel_reservation)
        reservation = self.state.reservations.get(reservation_id)
        if reservation is None or reservation.expired():
            # H02.FR.01: an unknown reservation is Rejected whatever the script says.
            status = enums.CancelReservationStatusEnumType.rejected
        elif status == enums.CancelReservationStatusEnumType.accepted:
            self._forget_reservation(reservation_id)
            self._after_answer(call_unique_id, lambda: self._release_evse(reservation.evse_id))
        return call_result.CancelReservation(status=enums.CancelReservationStatusEnumType(status))

    # -- unlock and reset -------------------------------------------------------------------

    @on(Action.unlock_connector)
    def on_unlock_connector(
        self, evse_id: int, connector_id: int, call_unique_id: str, **_: Any
    ) -> call_result.UnlockConnector:
        status = self._answer(call_unique_id, Action.unlock_connector)
        if status == enums.UnlockStatusEnumType.unlocked:
            if not self.state.has_connector(evse_id, connector_id):
                status = enums.UnlockStatusEnumType.unknown_connector
            elif self.state.transaction_on(evse_id) is not None:
                # F05.FR.02: unlocking never ends an authorized transaction.
                status = enums.UnlockStatusEnumType.ongoing_authorized_transaction
        return call_result.UnlockConnector(status=enums.UnlockStatusEnumType(status))

    @on(Action.reset)
    def on_reset(
        self, type: str, call_unique_id: str, evse_id: int | None = None, **_: Any
    ) -> call_result.Reset:
        status = self._answer(call_unique_id, Action.reset)
        answer = enums.ResetStatusEnumType
        if status != answer.rejected and evse_id is not None and not self.state.has_evse(evse_id):
            status = answer.rejected
        if status == answer.accepted and type == enums.ResetEnumType.on_idle:
            if not self._idle(evse_id):
                # B12.FR.01: OnIdle waits for the transactions to end.
                status = answer.scheduled
        if self.auto_transactions and status == answer.accepted:
            self._after_answer(call_unique_id, lambda: self._reset(evse_id))
        elif self.auto_transactions and status == answer.scheduled:
            self._pending_resets.add(evse_id)
            self._after_answer(call_unique_id, self._reset_when_idle)
        return call_result.Reset(status=answer(status))

    def _idle(self, evse_id: int | None) -> bool:
        scope = self.state.evse_ids if evse_id is None else [evse_id]
        return all(self.state.transaction_on(e) is None and e not in self._starting for e in scope)

    async def _reset_when_idle(self) -> None:
        for evse_id in list(self._pending_resets):
            if evse_id in self._pending_resets and self._idle(evse_id):
                self._pending_resets.discard(evse_id)
                await self._reset(evse_id)

    async def _reset(self, evse_id: int | None) -> None:
        """End the transactions in scope, then boot again (station) or re-report (EVSE).

        The socket stays open: a real station reconnects after a reset, but re-using the
        connection keeps tests and benchmarks free of reconnect timing.
        """
        for tx in list(self.state.transactions.values()):
            if evse_id is None or tx.evse_id == evse_id:
                await self.stop_transaction(tx.transaction_id, Reason.immediate_reset)
        if evse_id is not None:
            await self.send_status(evse_id, self._idle_status(evse_id))
            return
        self.ready.clear()
        for e in self.state.evse_ids:
            self.state.status[e] = self._idle_status(e)
        await self._boot_and_report(enums.BootReasonEnumType.remote_reset)
        self.ready.set()

    # -- device model -----------------------------------------------------------------------

    @on(Action.get_variables)
    def on_get_variables(
        self, get_variable_data: list[dict[str, Any]], call_unique_id: str, **_: Any
    ) -> call_result.GetVariables:
        status = self._answer(call_unique_id, Action.get_variables)
        forced = None if status == enums.GetVariableStatusEnumType.accepted else status
        return call_result.GetVariables(
            get_variable_result=self.device_model.get_variables(get_variable_data, forced)
        )

    @on(Action.set_variables)
    def on_set_variables(
        self, set_variable_data: list[dict[str, Any]], call_unique_id: str, **_: Any
    ) -> call_result.SetVariables:
        status = self._answer(call_unique_id, Action.set_variables)
        forced = None if status == enums.SetVariableStatusEnumType.accepted else status
        results = []
        for entry in set_variable_data:
            if _is_basic_auth_password(entry):
                results.append(self._take_basic_auth_password(entry, forced))
            else:
                results += self.device_model.set_variables([entry], forced)
        return call_result.SetVariables(set_variable_result=results)

    def _take_basic_auth_password(
        self, entry: dict[str, Any], forced: str | None
    ) -> datatypes.SetVariableResultType:
        """SecurityCtrlr.BasicAuthPassword: write-only, a passwordString of 16 to 40
        characters, used from the next connection on."""
        value = entry["attribute_value"]
        status = forced or (
            enums.SetVariableStatusEnumType.accepted
            if 16 <= len(value) <= 40
            else enums.SetVariableStatusEnumType.rejected
        )
        if status == enums.SetVariableStatusEnumType.accepted:
            self.take_password(value.encode())
        return datatypes.SetVariableResultType(
            attribute_status=enums.SetVariableStatusEnumType(status),
            component=entry["component"],
            variable=entry["variable"],
        )

    @on(Action.get_base_report)
    def on_get_base_report(
        self, request_id: int, report_base: str, call_unique_id: str, **_: Any
    ) -> call_result.GetBaseReport:
        status = self._answer(call_unique_id, Action.get_base_report)
        answer = enums.GenericDeviceModelStatusEnumType
        if status == answer.accepted:
            # A snapshot as of the request, however long sending it takes.
            report = self.device_model.report(report_base)
            if not report:
                status = answer.empty_result_set
            else:
                self._after_answer(call_unique_id, lambda: self._send_report(request_id, report))
        return call_result.GetBaseReport(status=answer(status))

    async def _send_report(self, request_id: int, report: list[datatypes.ReportDataType]) -> None:
        size = max(
            1,
            self.device_model.get_int(
                dm.DEVICE_DATA_CTRLR,
                dm.ITEMS_PER_MESSAGE,
                len(report),
                variable_instance="GetReport",
            ),
        )
        chunks = [report[i : i + size] for i in range(0, len(report), size)]
        generated_at = ocpp_timestamp()
        for seq_no, chunk in enumerate(chunks):
            await self.call(
                call.NotifyReport(
                    request_id=request_id,
                    generated_at=generated_at,
                    seq_no=seq_no,
                    report_data=chunk,
                    tbc=seq_no < len(chunks) - 1,
                ),
                suppress=False,
            )

    # -- misc -------------------------------------------------------------------------------

    @on(Action.clear_cache)
    def on_clear_cache(self, call_unique_id: str, **_: Any) -> call_result.ClearCache:
        status = self._answer(call_unique_id, Action.clear_cache)
        return call_result.ClearCache(status=enums.ClearCacheStatusEnumType(status))

    @on(Action.trigger_message)
    def on_trigger_message(
        self,
        requested_message: str,
        call_unique_id: str,
        evse: dict[str, Any] | None = None,
        **_: Any,
    ) -> call_result.TriggerMessage:
        status = self._answer(call_unique_id, Action.trigger_message)
        answer = enums.TriggerMessageStatusEnumType
        message = enums.MessageTriggerEnumType
        evse_id: int | None = evse["id"] if evse else None
        if status == answer.accepted:
            if evse_id is not None and not self.state.has_evse(evse_id):
                status = answer.rejected
            elif requested_message not in TRIGGERABLE:
                status = answer.not_implemented
            elif (
                requested_message == message.boot_notification
                and self.boot_status == enums.RegistrationStatusEnumType.accepted
            ):
                # F06.FR.17: no BootNotification on request once the station is accepted.
                status = answer.rejected
            else:
                trigger = message(requested_message)
                self._after_answer(call_unique_id, lambda: self._send_triggered(trigger, evse_id))
        return call_result.TriggerMessage(status=answer(status))

    async def _send_triggered(
        self, trigger: enums.MessageTriggerEnumType, evse_id: int | None
    ) -> None:
        message = enums.MessageTriggerEnumType
        targets = [evse_id] if evse_id is not None else list(self.state.evse_ids)
        if trigger == message.boot_notification:
            await self.boot(enums.BootReasonEnumType.triggered)
        elif trigger == message.heartbeat:
            await self.send_heartbeat()
        elif trigger == message.status_notification:
            for target in targets:
                await self.send_status(target, self.state.status[target])
        elif trigger == message.meter_values:
            for target in targets:
                await self.call(
                    call.MeterValues(
                        evse_id=target,
                        meter_value=[
                            self._meter_value(self.state.meter_wh[target], Context.trigger)
                        ],
                    ),
                    suppress=False,
                )
        elif trigger == message.transaction_event:
            for target in targets:
                tx = self.state.transaction_on(target)
                if tx is not None:
                    await self.send_meter_values(
                        tx.transaction_id, context=Context.trigger, trigger_reason=Trigger.trigger
                    )


def _is_basic_auth_password(entry: dict[str, Any]) -> bool:
    return (
        entry.get("component", {}).get("name") == "SecurityCtrlr"
        and entry.get("variable", {}).get("name") == "BasicAuthPassword"
    )
