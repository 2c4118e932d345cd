"""Submit an OCPI command, dispatch it to the station, resolve it exactly once."""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chargegate.cluster.router import StationRouter
from chargegate.domain import commands as dc
from chargegate.domain import station_calls as sc
from chargegate.domain.clock import as_utc, utcnow
from chargegate.domain.commands import (
    CommandReply,
    CommandResponseType,
    CommandResultType,
    CommandState,
    CommandType,
    Peer,
)
from chargegate.domain.evse import evse_status_of
from chargegate.domain.ids import new_id, new_remote_start_id
from chargegate.domain.results import command_result
from chargegate.domain.station_calls import Outcome
from chargegate.settings import Settings
from chargegate.store import command_sql
from chargegate.store.command_sql import Decision, Target
from chargegate.store.models import (
    ChargingSession,
    Connector,
    Party,
    Reservation,
    Station,
)
from chargegate.store.units import Units, run_in_session

from .background import BackgroundTasks
from .outbox import OutboxRow, enqueue, outbox_values
from .parties import PartyCache
from .ports import DeliverNow, OutboxSignal, PeerWire
from .pushes import PeerPushes

log = logging.getLogger(__name__)

OCPP16_ID_TAG_MAX = 20
STATUS_UNKNOWN_LOCATION = 2003


# A station or connector as the hot path reads it (a row, store/units.py) or as the ORM loads
# it: the same attributes.
StationLike = Station | Any
ConnectorLike = Any

# Reservations follow these commands' outcomes in the same transaction (ORM rows).
_WITH_RESERVATION = (CommandType.RESERVE_NOW, CommandType.CANCEL_RESERVATION)


class Refused(Exception):
    """A command answered at once without reaching a station."""

    def __init__(self, reply: CommandReply) -> None:
        super().__init__(reply.message)
        self.reply = reply


def _refuse(result: CommandResponseType, message: str, ocpi_status: int = 1000) -> Refused:
    return Refused(CommandReply(result, message, ocpi_status))


def _unknown(message: str) -> Refused:
    return _refuse(CommandResponseType.REJECTED, message, STATUS_UNKNOWN_LOCATION)


@dataclass(slots=True)
class _Plan:
    """What a command turns into once its target is known."""

    station: StationLike | None
    connector_id: int | None
    station_request: sc.StationRequest | None  # None: the outcome is known without a call
    known_result: tuple[CommandResultType, str] | None = None
    reservation: Reservation | None = None
    token_uid: str | None = None
    authorization_reference: str | None = None


class CommandService:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        router: StationRouter,
        wire: PeerWire,
        notify: OutboxSignal,
        deliver_now: DeliverNow | None = None,
        parties: PartyCache | None = None,
        *,
        units: Units,
    ) -> None:
        """With `deliver_now`, a result is POSTed by the task that decided it, right after its
        commit, instead of waiting for the delivery worker's next round."""
        self._parties = parties or PartyCache()
        self._units = units
        self._settings = settings
        self._sessions = sessions
        self._router = router
        self._wire = wire
        self._pushes = PeerPushes(wire)
        self._notify = notify
        self._deliver_now = deliver_now
        self._tasks = BackgroundTasks()

    # ---- submit ------------------------------------------------------------------------------

    async def submit(
        self,
        peer: Peer,
        request: dc.CommandRequest,
        response_url: str,
        correlation_id: str | None,
    ) -> CommandReply:
        command_type = dc.COMMAND_OF_REQUEST[type(request)]
        now = utcnow()
        command_id = new_id()
        deadline = now + timedelta(seconds=self._settings.station_deadline)
        try:
            # The target is read before any session opens: SQLite has one connection, and a
            # unit run while this task held it would wait for itself (store/units.py).
            target = await self._locate(peer, request)
            if isinstance(request, dc.StartSession | dc.UnlockConnector):
                # Decided from the station and EVSE alone: the command row is all it writes.
                plan = await self._plan_direct(request, target)
                values = _record(
                    command_id, peer, request, plan, response_url, correlation_id, now, deadline
                )
                await self._units.run(command_sql.record_command, values)
            else:
                async with self._sessions.begin() as s:
                    plan = await self._plan_stored(s, peer, request, target, now)
                    values = _record(
                        command_id, peer, request, plan, response_url, correlation_id, now, deadline
                    )
                    await run_in_session(s, command_sql.record_command, values)
                    if plan.reservation is not None:
                        plan.reservation.command_id = command_id
                        plan.reservation.response_url = response_url
        except Refused as refused:
            log.info(
                "%s from %s/%s refused: %s",
                command_type,
                peer.country_code,
                peer.party_id,
                refused.reply.message,
            )
            return refused.reply

        if plan.known_result is not None:
            await self.resolve(command_id, command_type, *plan.known_result)
        elif plan.station_request is not None:
            self._tasks.spawn(self._dispatch(command_id, command_type, plan, deadline))
        return CommandReply(CommandResponseType.ACCEPTED, command_id=command_id)

    async def _locate(self, peer: Peer, request: dc.CommandRequest) -> Target | None:
        """The station (and connector) a request names by location id and EVSE uid; None for
        requests that name a session or reservation instead."""
        match request:
            case dc.StartSession() | dc.ReserveNow() | dc.UnlockConnector():
                pass
            case _:
                return None
        if isinstance(request, dc.StartSession) and peer.profile == "gireve":
            if not request.evse_uid:
                raise _refuse(
                    CommandResponseType.REJECTED,
                    "evse_uid is required for START_SESSION by the GIREVE IOP profile",
                    2001,
                )
        ci = _ids_case_insensitive(peer)
        target = await self._units.run(
            command_sql.find_target, request.location_id, request.evse_uid, ci
        )
        if target.station is None:
            raise _unknown(f"unknown location {request.location_id!r}")
        if request.evse_uid and target.connector is None:
            location = target.station.location_id or target.station.id
            raise _unknown(f"unknown EVSE {request.evse_uid!r} at location {location!r}")
        return target

    async def _plan_direct(
        self, request: dc.StartSession | dc.UnlockConnector, target: Target | None
    ) -> _Plan:
        """Decide what can be decided at once (decisions.md, synchronous answers)."""
        assert target is not None
        station, connector = target.station, target.connector
        if isinstance(request, dc.UnlockConnector):
            if request.connector_id != "1":
                raise _unknown(f"unknown connector_id {request.connector_id!r}")
            assert connector is not None  # UnlockConnector always names an EVSE
            await self._check_online(station)
            return _Plan(station, connector.connector_id, sc.Unlock(connector.connector_id))
        if connector is not None and request.connector_id not in (None, "1"):
            raise _unknown(f"unknown connector_id {request.connector_id!r}")
        await self._check_usable(station, connector)
        connector_id = connector.connector_id if connector else None
        self._check_token_fits(station, request.token.uid)
        return _Plan(
            station,
            connector_id,
            sc.RemoteStart(
                connector_id=connector_id,
                id_token=request.token.uid,
                token_type=request.token.type,
                remote_start_id=new_remote_start_id(),
            ),
            token_uid=request.token.uid,
            authorization_reference=request.authorization_reference,
        )

    async def _plan_stored(
        self,
        s: AsyncSession,
        peer: Peer,
        request: dc.CommandRequest,
        target: Target | None,
        now: datetime,
    ) -> _Plan:
        """Decide what can be decided at once, from sessions and reservations, which the
        command's transaction may also write."""
        ci = _ids_case_insensitive(peer)
        match request:
            case dc.StopSession():
                session = await self._session(s, request.session_id, ci)
                if session is None:
                    raise _refuse(
                        CommandResponseType.UNKNOWN_SESSION,
                        f"session {request.session_id!r} is not known",
                    )
                if session.party_id != peer.id:
                    raise _refuse(
                        CommandResponseType.REJECTED, "session does not belong to this party"
                    )
                if session.status != "ACTIVE" or session.transaction_id is None:
                    raise _refuse(
                        CommandResponseType.REJECTED, f"session is {session.status}, not ACTIVE"
                    )
                session_station = await s.get(Station, session.station_id)
                assert session_station is not None
                await self._check_online(session_station)
                return _Plan(
                    session_station, session.connector_id, sc.RemoteStop(session.transaction_id)
                )
            case dc.ReserveNow():
                assert target is not None
                station, connector = target.station, target.connector
                await self._check_usable(station, connector)
                connector_id = connector.connector_id if connector else 0
                self._check_token_fits(station, request.token.uid)
                if as_utc(request.expiry_date) <= now:
                    raise _refuse(CommandResponseType.REJECTED, "expiry_date is in the past", 2001)
                reservation = await self._reservation_for(s, peer, request, station, connector_id)
                return _Plan(
                    station,
                    connector_id,
                    sc.Reserve(
                        connector_id=connector_id,
                        expiry_date=request.expiry_date,
                        id_token=request.token.uid,
                        reservation_id=reservation.ocpp_reservation_id,
                        token_type=request.token.type,
                    ),
                    reservation=reservation,
                    token_uid=request.token.uid,
                    authorization_reference=request.authorization_reference,
                )
            case dc.CancelReservation():
                known = await s.scalar(
                    select(Reservation).where(
                        Reservation.party_id == peer.id,
                        _eq(Reservation.reservation_id, request.reservation_id, ci),
                        Reservation.status.in_(("REQUESTED", "ACTIVE")),
                    )
                )
                if known is None:
                    # No sync value exists for this; the result says it (decisions.md).
                    return _Plan(
                        None,
                        None,
                        None,
                        known_result=(
                            CommandResultType.UNKNOWN_RESERVATION,
                            f"reservation {request.reservation_id!r} is not known",
                        ),
                    )
                reserved_at = await s.get(Station, known.station_id)
                assert reserved_at is not None
                await self._check_online(reserved_at)
                return _Plan(
                    reserved_at,
                    known.connector_id,
                    sc.CancelReservation(known.ocpp_reservation_id),
                    reservation=known,
                )
        raise TypeError(f"no plan for {type(request).__name__}")

    async def _check_online(self, station: StationLike) -> None:
        if not await self._router.is_connected(station.id):
            raise _refuse(
                CommandResponseType.REJECTED, f"station offline: {station.id} is not connected"
            )

    async def _check_usable(self, station: StationLike, connector: ConnectorLike | None) -> None:
        if station.locked or (connector is not None and connector.locked):
            raise _refuse(CommandResponseType.REJECTED, "EVSE is locked by the operator")
        await self._check_online(station)

    def _check_token_fits(self, station: StationLike, uid: str) -> None:
        if station.ocpp_version == "1.6" and len(uid) > OCPP16_ID_TAG_MAX:
            raise _refuse(
                CommandResponseType.REJECTED,
                f"token uid is {len(uid)} characters; an OCPP 1.6 station accepts at most "
                f"{OCPP16_ID_TAG_MAX} in idTag",
            )

    async def _session(self, s: AsyncSession, session_id: str, ci: bool) -> ChargingSession | None:
        return await s.scalar(
            select(ChargingSession).where(_eq(ChargingSession.id, session_id, ci))
        )

    async def _reservation_for(
        self,
        s: AsyncSession,
        peer: Peer,
        request: dc.ReserveNow,
        station: StationLike,
        connector_id: int,
    ) -> Reservation:
        """Same (party, location, reservation_id) replaces: the station sees the same int."""
        reservation = await s.scalar(
            select(Reservation).where(
                Reservation.party_id == peer.id,
                Reservation.location_id == station.id,
                Reservation.reservation_id == request.reservation_id,
            )
        )
        now = utcnow()
        if reservation is None:
            next_id = await s.scalar(
                select(func.coalesce(func.max(Reservation.ocpp_reservation_id), 0) + 1).where(
                    Reservation.station_id == station.id
                )
            )
            reservation = Reservation(
                party_id=peer.id,
                location_id=station.id,
                reservation_id=request.reservation_id,
                station_id=station.id,
                ocpp_reservation_id=int(next_id or 1),
                created_at=now,
            )
            s.add(reservation)
        reservation.connector_id = connector_id
        reservation.expiry_date = request.expiry_date
        reservation.status = "REQUESTED"
        return reservation

    # ---- dispatch and resolve ----------------------------------------------------------------

    async def _dispatch(
        self, command_id: str, command_type: CommandType, plan: _Plan, deadline: datetime
    ) -> None:
        assert plan.station_request is not None and plan.station is not None
        try:
            # Time already spent (storing, waiting for the station's queue) counts too.
            remaining = (deadline - utcnow()).total_seconds()
            reply = await self._router.call(plan.station.id, plan.station_request, remaining)
            # Only a refused start asks why (occupied, inoperative): skip the read otherwise.
            evse_status = (
                await self._evse_status(plan.station.id, plan.connector_id)
                if command_type is CommandType.START_SESSION
                and reply.outcome is not Outcome.ACCEPTED
                else None
            )
            result, message = command_result(command_type, reply, evse_status)
            await self.resolve(
                command_id,
                command_type,
                result,
                message,
                station_status=reply.status,
                deliver_here=True,
            )
        except Exception:
            # The sweeper resolves it as TIMEOUT at its deadline; nothing is left pending.
            log.exception("dispatch of command %s failed", command_id)

    async def _evse_status(self, station_id: str, connector_id: int | None) -> str | None:
        if not connector_id:
            return None
        async with self._sessions() as s:
            connector = await s.get(Connector, (station_id, connector_id))
            return evse_status_of(connector.ocpp_status) if connector else None

    async def resolve(
        self,
        command_id: str,
        command_type: CommandType,
        result: CommandResultType,
        message: str | None,
        station_status: str | None = None,
        deliver_here: bool = False,
    ) -> bool:
        """Decide the command's one outcome and queue its delivery, in one transaction.
        With `deliver_here`, the result is POSTed before this returns (by a caller with nothing
        else to do: the dispatch task, which then needs no second task for it).

        Returns False if another path (a late answer, the sweeper) decided it first."""
        decision = Decision(
            command_id=command_id,
            pending=CommandState.PENDING.value,
            state=CommandState.RESOLVED.value,
            result=result.value,
            message=message or None,
            station_status=station_status,
            now=utcnow(),
        )
        decide = (
            self._decide_with_reservation if command_type in _WITH_RESERVATION else self._decide
        )
        decided = await decide(decision, result, message)
        if decided is None:
            log.info("command %s already resolved; %s ignored", command_id, result)
            return False
        row, party_id, queued_more = decided
        if self._deliver_now is not None:
            party = await self._party(party_id)
            if deliver_here:
                await self._deliver_now(row, party)
            else:
                self._tasks.spawn(self._deliver_now(row, party))
        if queued_more or self._deliver_now is None:
            self._notify()
        return True

    def _result_row(self, result: CommandResultType, message: str | None) -> command_sql.OutboxFor:
        """The outbox row of a command's result (runs inside the deciding transaction)."""

        def row(command: Any, party_version: str | None) -> dict[str, Any]:
            return self._result_values(
                command.party_id,
                party_version,
                command.response_url,
                self._wire.command_result(command.ocpi_version, result, message),
                command.correlation_id,
                command.id,
            )

        return row

    def _result_template(
        self, result: CommandResultType, message: str | None
    ) -> command_sql.ResultTemplate:
        """The same row before its command is read: what comes from the command is filled in
        by the deciding statement (command_sql.decide_at_once), which ignores the blanks here."""
        return command_sql.ResultTemplate(
            body_211=self._wire.command_result("2.1.1", result, message),
            body_221=self._wire.command_result("2.2.1", result, message),
            values=self._result_values(0, None, "", {}, None, None),
        )

    def _result_values(
        self,
        party_id: int,
        party_version: str | None,
        url: str,
        body: dict[str, Any],
        correlation_id: str | None,
        command_id: str | None,
    ) -> dict[str, Any]:
        return outbox_values(
            kind="COMMAND_RESULT",
            party_id=party_id,
            party_version=party_version,
            method="POST",
            url=url,
            body=body,
            correlation_id=correlation_id,
            command_id=command_id,
            horizon=self._settings.delivery_result_horizon,
            lease_seconds=self._settings.delivery_lease if self._deliver_now else None,
        )

    async def _decide(
        self, decision: Decision, result: CommandResultType, message: str | None
    ) -> tuple[OutboxRow, int, bool] | None:
        """The outcome and its outbox row in one unit: one trip on SQLite, one statement on
        PostgreSQL."""
        if self._units.modifying_with:
            template = self._result_template(result, message)
            decided = await self._units.run(command_sql.decide_at_once, decision, template)
        else:
            decided = await self._units.run(
                command_sql.decide, decision, self._result_row(result, message)
            )
        if decided is None:
            return None
        return OutboxRow(id=decided.outbox_id, **decided.outbox), decided.command.party_id, False

    async def _decide_with_reservation(
        self, decision: Decision, result: CommandResultType, message: str | None
    ) -> tuple[OutboxRow, int, bool] | None:
        """As `command_sql.decide`, with the reservation following the outcome (ORM rows) in
        the same transaction."""
        async with self._sessions.begin() as s:
            command = await run_in_session(s, command_sql.resolve_command, decision)
            if command is None:
                return None
            party = await self._parties.get(s, command.party_id)
            assert party is not None
            queued_more = await self._after_effects(s, command, result)
            row = await enqueue(s, self._result_row(result, message)(command, party.ocpi_version))
        return row, command.party_id, queued_more

    async def _party(self, party_id: int) -> Party:
        party = await self._parties.load(self._sessions, party_id)
        assert party is not None
        return party

    async def _after_effects(
        self, s: AsyncSession, command: Any, result: CommandResultType
    ) -> bool:
        """Reservations follow their command; True when that queued more rows to send."""
        if command.type == CommandType.RESERVE_NOW.value:
            reservation = await s.scalar(
                select(Reservation).where(Reservation.command_id == command.id)
            )
            if reservation is not None:
                accepted = result is CommandResultType.ACCEPTED
                reservation.status = "ACTIVE" if accepted else "FAILED"
                if accepted and command.ocpi_version == "2.2.1":
                    await self._reservation_session(s, command, reservation)
                    return True
        elif (
            command.type == CommandType.CANCEL_RESERVATION.value
            and result is CommandResultType.ACCEPTED
        ):
            reservation_id = command.request.get("reservation_id")
            reservation = await s.scalar(
                select(Reservation).where(
                    Reservation.party_id == command.party_id,
                    Reservation.reservation_id == reservation_id,
                )
            )
            if reservation is not None:
                reservation.status = "CANCELLED"
        return False

    async def _reservation_session(
        self, s: AsyncSession, command: Any, reservation: Reservation
    ) -> None:
        """2.2.1: "A successful reservation will result in a new Session object being created
        by the CPO" (status RESERVATION). A replaced reservation keeps its Session."""
        if reservation.session_pk is not None:
            existing = await s.get(ChargingSession, reservation.session_pk)
            if existing is not None and existing.status == "RESERVATION":
                existing.connector_id = reservation.connector_id
                existing.last_updated = utcnow()
                await self._pushes.session(s, existing)
                return
        now = utcnow()
        session = ChargingSession(
            id=uuid.uuid4().hex[:24],
            station_id=reservation.station_id,
            connector_id=reservation.connector_id,
            party_id=command.party_id,
            command_id=command.id,
            id_tag=command.token_uid or "",
            token=command.request.get("token"),
            auth_method="COMMAND",
            authorization_reference=command.authorization_reference,
            meter_start=0,
            meter_last=0,
            kwh=0.0,
            status="RESERVATION",
            start_date_time=now,
            last_updated=now,
        )
        s.add(session)
        await s.flush()
        reservation.session_pk = session.pk
        await self._pushes.session(s, session)

    async def resolve_expired(self) -> int:
        """Resolve as TIMEOUT every pending command past its deadline (after a restart, or
        when a dispatch died). Whichever node runs this first wins; the update is conditional."""
        async with self._sessions() as s:
            expired = list(await s.execute(command_sql.expired_commands(utcnow())))
        count = 0
        for command_id, command_type in expired:
            if await self.resolve(
                command_id,
                CommandType(command_type),
                CommandResultType.TIMEOUT,
                "no answer from the charge point before the deadline",
            ):
                count += 1
        return count

    async def stop(self) -> None:
        await self._tasks.stop()


def _ids_case_insensitive(peer: Peer) -> bool:
    return peer.ocpi_version != "2.1.1"  # 2.2.1 ids are CiString


def _eq(column: Any, value: str, case_insensitive: bool) -> Any:
    if case_insensitive:
        return func.lower(column) == value.lower()
    return column == value


def _record(
    command_id: str,
    peer: Peer,
    request: dc.CommandRequest,
    plan: _Plan,
    response_url: str,
    correlation_id: str | None,
    now: datetime,
    deadline: datetime,
) -> dict[str, Any]:
    """The command's row as it is first written."""
    return {
        "id": command_id,
        "party_id": peer.id,
        "ocpi_version": peer.ocpi_version,
        "type": dc.COMMAND_OF_REQUEST[type(request)].value,
        "station_id": plan.station.id if plan.station else None,
        "connector_id": plan.connector_id,
        "request": _request_record(request),
        "response_url": response_url,
        "correlation_id": correlation_id,
        "authorization_reference": plan.authorization_reference,
        "token_uid": plan.token_uid,
        "remote_start_id": getattr(plan.station_request, "remote_start_id", None),
        "state": CommandState.PENDING.value,
        "deadline": deadline,
        "created_at": now,
        "result": None,
        "message": None,
        "station_status": None,
        "resolved_at": None,
    }


def _request_record(request: dc.CommandRequest) -> dict[str, Any]:
    """The request as stored (JSON): the token as the eMSP sent it. Field by field rather than
    `asdict`, whose deep copy of the token was a visible share of a command's CPU."""
    record: dict[str, Any] = {}
    for f in fields(request):
        value = getattr(request, f.name)
        if isinstance(value, dc.Token):
            value = value.raw or asdict(value)
        elif isinstance(value, datetime):
            value = value.isoformat()
        record[f.name] = value
    return record
