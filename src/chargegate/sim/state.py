"""What a simulated station remembers between messages: connectors, reservations, transactions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ocpp.v16 import enums


def utc_now() -> datetime:
    return datetime.now(UTC)


def ocpp_timestamp(moment: datetime | None = None) -> str:
    moment = moment or utc_now()
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    # A timestamp without offset is taken as UTC, as most CSMSs mean it.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class Reservation:
    reservation_id: int
    connector_id: int
    id_tag: str
    expiry: datetime
    parent_id_tag: str | None = None

    def expired(self, now: datetime | None = None) -> bool:
        return (now or utc_now()) >= self.expiry


@dataclass
class Transaction:
    transaction_id: int
    connector_id: int
    id_tag: str
    meter_start: int
    started_at: datetime
    reservation_id: int | None = None
    # idTagInfo.status of StartTransaction.conf, as the CSMS judged the idTag.
    authorization: str = enums.AuthorizationStatus.accepted


class StationState:
    def __init__(self, connectors: int) -> None:
        self.connector_ids = range(1, connectors + 1)
        self.status: dict[int, str] = {
            c: enums.ChargePointStatus.available for c in range(connectors + 1)
        }
        # Energy.Active.Import.Register per connector, in Wh.
        self.meter_wh: dict[int, int] = dict.fromkeys(self.connector_ids, 0)
        self.reservations: dict[int, Reservation] = {}
        self.transactions: dict[int, Transaction] = {}

    def has_connector(self, connector_id: int) -> bool:
        return connector_id in self.connector_ids

    def transaction_on(self, connector_id: int) -> Transaction | None:
        for tx in self.transactions.values():
            if tx.connector_id == connector_id:
                return tx
        return None

    def reservation_on(self, connector_id: int) -> Reservation | None:
        for reservation in self.reservations.values():
            if reservation.connector_id == connector_id and not reservation.expired():
                return reservation
        return None

    def reservation_for(self, connector_id: int, id_tag: str) -> Reservation | None:
        """The live reservation a transaction for `id_tag` on `connector_id` would use."""
        for reservation in self.reservations.values():
            if reservation.expired() or reservation.id_tag != id_tag:
                continue
            # A reservation on connector 0 holds any connector of the station.
            if reservation.connector_id in (connector_id, 0):
                return reservation
        return None

    def pick_connector(self, id_tag: str) -> int | None:
        """Where RemoteStartTransaction without connectorId starts: the tag's reservation, else
        the first connector that is neither charging nor reserved for someone else."""
        for reservation in self.reservations.values():
            if reservation.id_tag == id_tag and reservation.connector_id > 0:
                if not reservation.expired():
                    return reservation.connector_id
        for connector_id in self.connector_ids:
            if (
                self.transaction_on(connector_id) is None
                and self.reservation_on(connector_id) is None
            ):
                return connector_id
        return None
