"""In-memory fakes of the service layer's ports: the store, the station router, the peers'
wire and the delivery worker's signals (the cap is the real in-process one, cluster/cap.py).
Service tests run against these, with no database, no server and no socket."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chargegate.domain import station_calls as sc
from chargegate.domain.clock import as_utc
from chargegate.domain.commands import CommandResultType
from chargegate.domain.evse import evse_status_of
from chargegate.domain.station_calls import Outcome, StationReply
from chargegate.service.outbox import OutboxRow
from chargegate.service.ports import (
    Decision,
    Recorded,
    ReservationFollows,
    ReservationToCancel,
    Reserving,
    ResultRow,
    SessionToStop,
    SessionView,
    Target,
)
from chargegate.service.remote_requests import RemoteRequestRow, RequestOutcome
from chargegate.store.models import (
    ChargingSession,
    Connector,
    RemoteRequest,
    Station,
    StationConfiguration,
)

# ---- stations, the wire, delivery -------------------------------------------------------------


class FakeRouter:
    """Stations in `online` answer with `replies[station]` (ACCEPTED by default); while
    `hold` is set, calls wait for it to be set free."""

    def __init__(self) -> None:
        self.online: set[str] = set()
        self.replies: dict[str, StationReply] = {}
        self.calls: list[tuple[str, sc.StationRequest, float]] = []
        self.called = asyncio.Event()
        self.hold: asyncio.Event | None = None

    async def is_connected(self, station_id: str) -> bool:
        return station_id in self.online

    async def call(
        self, station_id: str, request: sc.StationRequest, timeout: float
    ) -> StationReply:
        self.calls.append((station_id, request, timeout))
        self.called.set()
        if self.hold is not None:
            await self.hold.wait()
        if station_id not in self.online:
            return StationReply(Outcome.OFFLINE, description="charge point is offline")
        return self.replies.get(station_id, StationReply(Outcome.ACCEPTED, "Accepted"))


class FakeWire:
    def command_result(
        self, version: str, result: CommandResultType, message: str | None
    ) -> dict[str, Any]:
        return {"version": version, "result": result.value, "message": message}

    def session(self, version: str, view: SessionView) -> dict[str, Any]:
        return {"version": version, "id": view.session.id}

    cdr = session

    def session_push_url(self, party: Any, session: Any) -> str | None:
        return None


@dataclass
class FakeParty:
    id: int
    ocpi_version: str | None = "2.2.1"


class Delivery:
    """The delivery worker's two signals: a wake-up, and a row to send at once."""

    def __init__(self) -> None:
        self.wakeups = 0
        self.sent: list[tuple[OutboxRow, Any]] = []
        self._sending: asyncio.Queue[OutboxRow] = asyncio.Queue()

    def notify(self) -> None:
        self.wakeups += 1

    async def deliver_now(self, row: OutboxRow, party: Any) -> None:
        self.sent.append((row, party))
        self._sending.put_nowait(row)

    async def next_sent(self) -> OutboxRow:
        """The next row sent at once (waits for it)."""
        return await asyncio.wait_for(self._sending.get(), 1)


# ---- commands ---------------------------------------------------------------------------------


@dataclass
class FakeStation:
    id: str
    location_id: str | None = None
    ocpp_version: str = "1.6"
    locked: bool = False
    published: bool = True
    site: dict[str, Any] | None = None


@dataclass
class FakeConnector:
    station_id: str
    connector_id: int
    evse_uid: str | None = None
    locked: bool = False
    ocpp_status: str | None = "Available"
    spec: dict[str, Any] | None = None


@dataclass
class FakeSession:
    id: str
    party_id: int | None
    station_id: str
    connector_id: int
    transaction_id: str | None
    status: str = "ACTIVE"


@dataclass
class FakeReservation:
    party_id: int
    location_id: str
    reservation_id: str
    station_id: str
    connector_id: int
    ocpp_reservation_id: int
    expiry_date: datetime
    command_id: str
    response_url: str
    status: str = "REQUESTED"


@dataclass
class FakeCommandStore:
    """Commands as rows (dicts) with the columns the real store has; outcomes are recorded
    once, with their outbox row, as the real store's one unit does."""

    stations: dict[str, FakeStation] = field(default_factory=dict)
    connectors: list[FakeConnector] = field(default_factory=list)
    sessions: dict[str, FakeSession] = field(default_factory=dict)
    reservations: list[FakeReservation] = field(default_factory=list)
    parties: dict[int, FakeParty] = field(default_factory=dict)
    commands: dict[str, dict[str, Any]] = field(default_factory=dict)
    outbox: list[OutboxRow] = field(default_factory=list)
    # Every outcome asked for: (command id, result, recorded?).
    outcomes: asyncio.Queue[tuple[str, str, bool]] = field(default_factory=asyncio.Queue)

    def add_station(self, station_id: str, *connectors: int, **kwargs: Any) -> FakeStation:
        station = FakeStation(station_id, **kwargs)
        self.stations[station_id] = station
        for number in connectors:
            self.connectors.append(
                FakeConnector(station_id, number, evse_uid=f"{station_id}-{number}")
            )
        return station

    def connector(self, station_id: str, number: int) -> FakeConnector:
        return next(
            c for c in self.connectors if c.station_id == station_id and c.connector_id == number
        )

    async def find_target(
        self, location_id: str, evse_uid: str | None, case_insensitive: bool
    ) -> Target:
        def same(a: str | None, b: str) -> bool:
            return a is not None and (a.lower() == b.lower() if case_insensitive else a == b)

        station = next(
            (
                s
                for s in self.stations.values()
                if same(s.location_id, location_id)
                or (s.location_id is None and same(s.id, location_id))
            ),
            None,
        )
        if station is None or evse_uid is None:
            return Target(station, None)
        connector = next(
            (
                c
                for c in self.connectors
                if c.station_id == station.id and same(c.evse_uid, evse_uid)
            ),
            None,
        )
        return Target(station, connector)

    async def session_to_stop(
        self, session_id: str, case_insensitive: bool
    ) -> SessionToStop | None:
        session = self.sessions.get(session_id)
        if session is None:
            return None
        return SessionToStop(
            session.party_id,
            session.status,
            session.transaction_id,
            session.connector_id,
            self.stations[session.station_id],
        )

    async def reservation_to_cancel(
        self, party_id: int, reservation_id: str, case_insensitive: bool
    ) -> ReservationToCancel | None:
        for r in self.reservations:
            if (
                r.party_id == party_id
                and r.reservation_id == reservation_id
                and r.status in ("REQUESTED", "ACTIVE")
            ):
                return ReservationToCancel(
                    r.connector_id, r.ocpp_reservation_id, self.stations[r.station_id]
                )
        return None

    async def record(self, command: dict[str, Any]) -> None:
        assert command["id"] not in self.commands
        self.commands[command["id"]] = dict(command)

    async def record_reserving(self, command: dict[str, Any], reserving: Reserving) -> int:
        await self.record(command)
        for r in self.reservations:
            if (r.party_id, r.location_id, r.reservation_id) == (
                reserving.party_id,
                reserving.station_id,
                reserving.reservation_id,
            ):
                r.connector_id, r.expiry_date = reserving.connector_id, reserving.expiry_date
                r.status, r.command_id = "REQUESTED", command["id"]
                r.response_url = command["response_url"]
                return r.ocpp_reservation_id
        ocpp_id = 1 + max(
            (
                r.ocpp_reservation_id
                for r in self.reservations
                if r.station_id == reserving.station_id
            ),
            default=0,
        )
        self.reservations.append(
            FakeReservation(
                reserving.party_id,
                reserving.station_id,
                reserving.reservation_id,
                reserving.station_id,
                reserving.connector_id,
                ocpp_id,
                reserving.expiry_date,
                command["id"],
                command["response_url"],
            )
        )
        return ocpp_id

    async def record_outcome(
        self, decision: Decision, result: ResultRow, reservation: ReservationFollows | None
    ) -> Recorded | None:
        command = self.commands.get(decision.command_id)
        if command is None or command["state"] != decision.pending:
            self.outcomes.put_nowait((decision.command_id, decision.result, False))
            return None
        command.update(
            state=decision.state,
            result=decision.result,
            message=decision.message,
            station_status=decision.station_status,
            resolved_at=decision.now,
        )
        if reservation is not None and reservation.status is not None:
            for r in self.reservations:
                if (
                    r.command_id == command["id"]
                    if reservation.by_command
                    else (
                        r.party_id == command["party_id"]
                        and r.reservation_id == command["request"]["reservation_id"]
                    )
                ):
                    r.status = reservation.status
        party = self.parties.get(command["party_id"])
        values = dict(result.values)
        values.update(
            party_id=command["party_id"],
            ocpi_version=(party.ocpi_version if party else None) or "2.2.1",
            url=command["response_url"],
            body=result.render(command["ocpi_version"]),
            correlation_id=command["correlation_id"],
            command_id=command["id"],
        )
        row = OutboxRow(id=len(self.outbox) + 1, **values)
        self.outbox.append(row)
        self.outcomes.put_nowait((decision.command_id, decision.result, True))
        return Recorded(row, command["party_id"], False)

    async def expired(self, now: datetime) -> list[tuple[str, str]]:
        return [
            (c["id"], c["type"])
            for c in self.commands.values()
            if c["state"] == "PENDING" and as_utc(c["deadline"]) < now
        ]

    async def evse_status(self, station_id: str, connector_id: int) -> str | None:
        found = [
            c
            for c in self.connectors
            if c.station_id == station_id and c.connector_id == connector_id
        ]
        return evse_status_of(found[0].ocpp_status) if found else None

    async def load_party(self, party_id: int) -> FakeParty | None:
        return self.parties.get(party_id)


# ---- operator remote requests -----------------------------------------------------------------


@dataclass
class FakeRemoteRequestStore:
    """Remote request records and what they name, as the mapped classes (never flushed)."""

    stations: dict[str, Station] = field(default_factory=dict)
    connectors: list[Connector] = field(default_factory=list)
    sessions: list[ChargingSession] = field(default_factory=list)
    records: dict[str, RemoteRequest] = field(default_factory=dict)
    configuration: dict[tuple[str, str], StationConfiguration] = field(default_factory=dict)
    # Every record finished: (record id, status).
    finished: asyncio.Queue[tuple[str, str]] = field(default_factory=asyncio.Queue)

    def add_station(self, station_id: str, *connectors: int, now: datetime) -> Station:
        station = Station(
            id=station_id, ocpp_version="1.6", first_seen=now, last_seen=now, locked=False
        )
        self.stations[station_id] = station
        for number in connectors:
            self.connectors.append(
                Connector(
                    station_id=station_id,
                    connector_id=number,
                    uuid=f"{station_id}-uuid-{number}",
                    locked=False,
                    updated_at=now,
                )
            )
        return station

    def add_session(
        self, station_id: str, connector_id: int, id_tag: str, started: datetime
    ) -> ChargingSession:
        session = ChargingSession(
            pk=len(self.sessions) + 1,
            id=f"S{len(self.sessions) + 1}",
            station_id=station_id,
            connector_id=connector_id,
            transaction_id=str(len(self.sessions) + 1),
            id_tag=id_tag,
            status="ACTIVE",
            start_date_time=started,
            last_updated=started,
        )
        self.sessions.append(session)
        return session

    async def station(self, station_id: str) -> Station | None:
        return self.stations.get(station_id)

    async def connector(
        self, station_id: str, connector_id: int | None, connector_uuid: str | None
    ) -> Connector | None:
        for c in self.connectors:
            if c.station_id == station_id and (
                c.uuid == connector_uuid
                if connector_uuid is not None
                else c.connector_id == connector_id
            ):
                return c
        return None

    async def session(
        self, session_id: str | None, station_id: str | None, transaction_id: str | None
    ) -> ChargingSession | None:
        for s in self.sessions:
            if (
                s.id == session_id
                if session_id is not None
                else (s.station_id, s.transaction_id) == (station_id, transaction_id)
            ):
                return s
        return None

    async def add(self, values: dict[str, Any]) -> RemoteRequest:
        record = RemoteRequest(**values)
        self.records[record.id] = record
        return record

    async def finish(self, record_id: str, outcome: RequestOutcome) -> RemoteRequest:
        record = self.records[record_id]
        record.status, record.response = outcome.status, outcome.response
        record.message = outcome.message
        record.ocpp_message_ids = [*record.ocpp_message_ids, *outcome.message_ids]
        if outcome.finished_at is not None:
            record.finished_at = outcome.finished_at
        self.finished.put_nowait((record_id, outcome.status))
        return record

    async def get(self, record_id: str) -> RemoteRequest | None:
        return self.records.get(record_id)

    async def stored_configuration(self, station_id: str) -> list[StationConfiguration]:
        return sorted(
            (c for (sid, _), c in self.configuration.items() if sid == station_id),
            key=lambda c: c.key,
        )

    async def store_configuration(self, station_id: str, keys: list[dict[str, Any]]) -> None:
        for entry in keys:
            self.configuration[station_id, entry["key"]] = StationConfiguration(
                station_id=station_id,
                key=entry["key"],
                value=entry.get("value"),
                readonly=bool(entry.get("readonly")),
            )

    async def waiting_attempts(self) -> list[RemoteRequest]:
        return [
            r
            for r in self.records.values()
            if r.kind == "remote_start_attempt" and r.status == "WAITING"
        ]

    async def due_stops(self, now: datetime) -> list[RemoteRequest]:
        return [
            r
            for r in self.records.values()
            if r.kind == "remote_start_attempt"
            and r.status == "SUCCEEDED"
            and r.stop_at is not None
            and as_utc(r.stop_at) <= now
            and r.stop_request_id is None
        ]

    async def attempt_session(self, attempt: RemoteRequestRow) -> ChargingSession | None:
        assert attempt.valid_until is not None
        for s in self.sessions:
            if (s.station_id, s.connector_id, s.id_tag) == (
                attempt.station_id,
                attempt.connector_id,
                attempt.id_tag,
            ) and as_utc(attempt.created_at) - timedelta(seconds=5) <= as_utc(
                s.start_date_time
            ) <= as_utc(attempt.valid_until):
                return s
        return None

    async def settle_attempt(self, attempt_id: str, values: dict[str, Any]) -> None:
        record = self.records[attempt_id]
        if record.status == "WAITING":
            for name, value in values.items():
                setattr(record, name, value)

    async def claim_stop(self, attempt_id: str, marker: str) -> bool:
        record = self.records[attempt_id]
        if record.stop_request_id is not None:
            return False
        record.stop_request_id = marker
        return True

    async def set_stop_request(self, attempt_id: str, stop_request_id: str) -> None:
        self.records[attempt_id].stop_request_id = stop_request_id

    async def set_station_lock(self, station_id: str, locked: bool) -> Station | None:
        station = self.stations.get(station_id)
        if station is not None:
            station.locked = locked
        return station

    async def set_connector_lock(
        self, station_id: str, connector_uuid: str, locked: bool
    ) -> Connector | None:
        connector = await self.connector(station_id, None, connector_uuid)
        if connector is None or connector.connector_id == 0:
            return None
        connector.locked = locked
        return connector
