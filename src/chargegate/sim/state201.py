"""What a simulated OCPP 2.0.1 station remembers between messages: EVSEs, reservations,
transactions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ocpp.v201 import datatypes, enums

from chargegate.sim.state import utc_now

# Every simulated EVSE has exactly one connector, with this id.
CONNECTOR_ID = 1


def same_token(a: datatypes.IdTokenType, b: datatypes.IdTokenType) -> bool:
    # IdTokenType.idToken is "case insensitive". The type is ignored: a test starting locally
    # with a bare string must still find the reservation the CSMS made with type Central.
    return a.id_token.casefold() == b.id_token.casefold()


@dataclass
class Reservation201:
    reservation_id: int
    # None: any EVSE of the station.
    evse_id: int | None
    id_token: datatypes.IdTokenType
    expiry: datetime
    group_id_token: datatypes.IdTokenType | None = None

    def expired(self, now: datetime | None = None) -> bool:
        return (now or utc_now()) >= self.expiry


@dataclass
class Transaction201:
    transaction_id: str
    evse_id: int
    id_token: datatypes.IdTokenType
    meter_start: int
    started_at: datetime
    remote_start_id: int | None = None
    reservation_id: int | None = None
    # idTokenInfo.status of the Started TransactionEvent's response, as the CSMS judged the token.
    authorization: str = enums.AuthorizationStatusEnumType.accepted
    # seqNo of the next TransactionEvent; OCPP 2.0.1 counts per transaction from 0.
    next_seq_no: int = field(default=0)

    def take_seq_no(self) -> int:
        seq_no = self.next_seq_no
        self.next_seq_no += 1
        return seq_no


class StationState201:
    def __init__(self, evses: int) -> None:
        self.evse_ids = range(1, evses + 1)
        self.status: dict[int, str] = dict.fromkeys(
            self.evse_ids, enums.ConnectorStatusEnumType.available
        )
        # Energy.Active.Import.Register per EVSE, in Wh.
        self.meter_wh: dict[int, int] = dict.fromkeys(self.evse_ids, 0)
        self.reservations: dict[int, Reservation201] = {}
        self.transactions: dict[str, Transaction201] = {}

    def has_evse(self, evse_id: int) -> bool:
        return evse_id in self.evse_ids

    def has_connector(self, evse_id: int, connector_id: int) -> bool:
        return self.has_evse(evse_id) and connector_id == CONNECTOR_ID

    def transaction_on(self, evse_id: int) -> Transaction201 | None:
        for tx in self.transactions.values():
            if tx.evse_id == evse_id:
                return tx
        return None

    def reservation_on(self, evse_id: int) -> Reservation201 | None:
        """The live reservation that holds `evse_id` itself (not an any-EVSE one)."""
        for reservation in self.reservations.values():
            if reservation.evse_id == evse_id and not reservation.expired():
                return reservation
        return None

    def reservation_for(
        self, evse_id: int, id_token: datatypes.IdTokenType
    ) -> Reservation201 | None:
        """The live reservation a transaction of `id_token` on `evse_id` would use."""
        for reservation in self.reservations.values():
            if reservation.expired() or not same_token(reservation.id_token, id_token):
                continue
            if reservation.evse_id in (evse_id, None):
                return reservation
        return None

    def is_free(self, evse_id: int) -> bool:
        """Neither charging, reserved, nor out of order."""
        return (
            self.status[evse_id] == enums.ConnectorStatusEnumType.available
            and self.transaction_on(evse_id) is None
            and self.reservation_on(evse_id) is None
        )

    def pick_evse(self, id_token: datatypes.IdTokenType) -> int | None:
        """Where RequestStartTransaction without evseId starts: the token's reservation, else
        the first free EVSE."""
        for reservation in self.reservations.values():
            if reservation.evse_id is not None and not reservation.expired():
                if same_token(reservation.id_token, id_token):
                    return reservation.evse_id
        for evse_id in self.evse_ids:
            if self.is_free(evse_id):
                return evse_id
        return None
