"""Station events against a fake of their store: what a station's message changes is the
store's one transaction; the service decides what follows (reservations cancelled on an
inoperative EVSE, the delivery worker woken only when something was queued)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chargegate.service.station_events import (
    MeterSample,
    StationEvents,
    TransactionStart,
    kwh_between,
)

from .fakes import Delivery


class FakeStationEventStore:
    """Records each call; answers as `queued`/`stop_outcome`/`cancelled` say."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.queued = True
        self.stop_outcome = "STOPPED"
        self.cancelled = 1

    async def station_booted(
        self, station_id: str, ocpp_version: str, identity: dict[str, str | None]
    ) -> None:
        self.calls.append(("booted", (station_id, ocpp_version, identity)))

    async def station_connected(self, station_id: str, ocpp_version: str) -> None:
        self.calls.append(("connected", (station_id, ocpp_version)))

    async def connector_status(
        self, station_id: str, connector_id: int, status: str, error_code: str | None
    ) -> None:
        self.calls.append(("status", (station_id, connector_id, status)))

    async def transaction_started(self, start: TransactionStart) -> tuple[str, bool]:
        self.calls.append(("started", (start.station_id, start.id_tag)))
        return "17", self.queued

    async def transaction_stopped(self, station_id: str, **given: Any) -> str:
        self.calls.append(("stopped", (station_id, given["transaction_id"])))
        return self.stop_outcome

    async def meter_values(self, station_id: str, transaction_id: str, sample: MeterSample) -> None:
        self.calls.append(("meter", (station_id, transaction_id, sample.wh)))

    async def knows_transaction(self, station_id: str, transaction_id: str) -> bool:
        return transaction_id == "17"

    async def reservation_ended(self, station_id: str, ocpp_id: int, *, removed: bool) -> bool:
        self.calls.append(("reservation_ended", (station_id, ocpp_id, removed)))
        return removed

    async def cancel_reservations_at(
        self, station_id: str, connector_id: int | None, why: str
    ) -> int:
        self.calls.append(("cancel", (station_id, connector_id, why)))
        return self.cancelled

    async def expire_reservations(self, now: datetime) -> int:
        self.calls.append(("expire", ()))
        return 0

    async def configuration_reported(
        self, station_id: str, entries: list[dict[str, object]]
    ) -> None:
        self.calls.append(("configuration", (station_id, len(entries))))


def _events() -> tuple[StationEvents, FakeStationEventStore, Delivery]:
    store, delivery = FakeStationEventStore(), Delivery()
    return StationEvents(store, delivery.notify), store, delivery


async def test_an_inoperative_evse_cancels_its_reservations_and_wakes_delivery() -> None:
    events, store, delivery = _events()
    await events.status("CP-1", 1, "Available", None)
    assert [name for name, _ in store.calls] == ["status"]
    await events.status("CP-1", 2, "Faulted", "GroundFailure")
    assert store.calls[-1] == ("cancel", ("CP-1", 2, "the EVSE became Faulted"))
    assert delivery.wakeups == 1
    store.cancelled = 0  # nothing to cancel: nothing to send
    await events.status("CP-1", 2, "Unavailable", None)
    assert delivery.wakeups == 1


async def test_delivery_is_woken_only_when_a_transaction_queued_something() -> None:
    events, store, delivery = _events()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    start = TransactionStart("CP-1", connector_id=1, id_tag="TAG", meter_start=0, timestamp=at)
    tx = await events.transaction_started(start)
    assert tx == "17" and delivery.wakeups == 1
    store.queued = False  # a repeated StartTransaction
    await events.transaction_started(start)
    assert delivery.wakeups == 1
    for outcome, wakeups in (("UNKNOWN", 1), ("DUPLICATE", 1), ("STOPPED", 2)):
        store.stop_outcome = outcome
        await events.transaction_stopped(
            "CP-1", transaction_id="17", meter_stop=1500, timestamp=at, reason=None
        )
        assert delivery.wakeups == wakeups, outcome


async def test_a_removed_reservation_is_reported_an_expired_one_is_not() -> None:
    events, store, delivery = _events()
    await events.reservation_ended("CP-1", 3, removed=False)
    assert delivery.wakeups == 0
    await events.reservation_ended("CP-1", 3, removed=True)
    assert delivery.wakeups == 1
    assert [args for name, args in store.calls] == [("CP-1", 3, False), ("CP-1", 3, True)]


def test_energy_is_never_negative_and_has_four_decimals() -> None:
    assert kwh_between(1000, 2234) == 1.234
    assert kwh_between(1000, 900) == 0.0
    assert kwh_between(0, 1) == 0.001
