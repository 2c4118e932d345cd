"""Submit an OCPI command, dispatch it to the station, resolve it exactly once."""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, func, select
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
from chargegate.domain.evse import evse_status_of, parse_evse_uid
from chargegate.domain.results import command_result
from chargegate.domain.station_calls import Outcome
from chargegate.settings import Settings
from chargegate.store import command_sql
from chargegate.store.models import ChargingSession, Command, Connector, Reservation, Station

from .background import BackgroundTasks
from .outbox import enqueue
from .parties import PartyCache
from .ports import DeliverNow, OutboxSignal, PeerWire
from .pushes import PeerPushes

log = logging.getLogger(__name__)

OCPP16_ID_TAG_MAX = 20
STATUS_UNKNOWN_LOCATION = 2003


# A station as the hot path reads it (a Core row) or as the ORM loads it: the same attributes.
StationLike = Station | Row[Any]


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
    ) -> None:
        """With `deliver_now`, a result is POSTed by the task that decided it, right after its
        commit, instead of waiting for the delivery worker's next round."""
        self._parties = parties or PartyCache()
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
        command_id = str(uuid.uuid4())
        deadline = now + timedelta(seconds=self._settings.station_deadline)
        try:
            async with self._sessions.begin() as s:
                plan = await self._plan(s, peer, request, command_id, now)
                await command_sql.insert_command(
                    await s.connection(),
                    {
                        "id": command_id,
                        "party_id": peer.id,
                        "ocpi_version": peer.ocpi_version,
                        "type": command_type.value,
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
                    },
                )
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
            await self.resolve(command_id, *plan.known_result)
        elif plan.station_request is not None:
            self._tasks.spawn(self._dispatch(command_id, command_type, plan, deadline))
        return CommandReply(CommandResponseType.ACCEPTED, command_id=command_id)

    async def _plan(
        self,
        s: AsyncSession,
        peer: Peer,
        request: dc.CommandRequest,
        command_id: str,
        now: datetime,
    ) -> _Plan:
        """Decide what can be decided at once (decisions.md, synchronous answers)."""
        ci = peer.ocpi_version != "2.1.1"  # 2.2.1 ids are CiString
        match request:
            case dc.StartSession():
                if peer.profile == "gireve" and not request.evse_uid:
                    raise _refuse(
                        CommandResponseType.REJECTED,
                        "evse_uid is required for START_SESSION by the GIREVE IOP profile",
                        2001,
                    )
                station = await self._station(s, request.location_id, ci)
                connector = None
                if request.evse_uid:
                    connector = await self._connector(s, station, request.evse_uid, ci)
                    if request.connector_id is not None and request.connector_id != "1":
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
                station = await self._station(s, request.location_id, ci)
                connector = None
                if request.evse_uid:
                    connector = await self._connector(s, station, request.evse_uid, ci)
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
            case dc.UnlockConnector():
                station = await self._station(s, request.location_id, ci)
                connector = await self._connector(s, station, request.evse_uid, ci)
                if request.connector_id != "1":
                    raise _unknown(f"unknown connector_id {request.connector_id!r}")
                await self._check_online(station)
                return _Plan(station, connector.connector_id, sc.Unlock(connector.connector_id))
        raise TypeError(f"no plan for {type(request).__name__}")

    async def _station(self, s: AsyncSession, location_id: str, ci: bool) -> StationLike:
        """The station behind an OCPI location id: a mapped id, or the station's own."""
        # Exact matches first: they use the indexes. lower() scans, so it is only the fallback
        # for a 2.2.1 peer whose CiString differs from ours in case.
        conn = await s.connection()
        for case_insensitive in (False, True) if ci else (False,):
            station = await command_sql.station_by_location(conn, location_id, case_insensitive)
            if station is not None:
                return station
        raise _unknown(f"unknown location {location_id!r}")

    async def _connector(
        self, s: AsyncSession, station: StationLike, uid: str, ci: bool
    ) -> Row[Any]:
        """The OCPP connector behind an OCPI EVSE uid: a mapped uid, or `{station}-{n}` of a
        connector that has no mapped uid. One query for both."""
        parsed = parse_evse_uid(uid)
        same_station = parsed is not None and (
            parsed[0].lower() == station.id.lower() if ci else parsed[0] == station.id
        )
        number = parsed[1] if parsed is not None and same_station and parsed[1] >= 1 else None
        connector = await command_sql.connector_by_evse(
            await s.connection(), station.id, uid, number, ci
        )
        if connector is None:
            location = station.location_id or station.id
            raise _unknown(f"unknown EVSE {uid!r} at location {location!r}")
        return connector

    async def _check_online(self, station: StationLike) -> None:
        if not await self._router.is_connected(station.id):
            raise _refuse(
                CommandResponseType.REJECTED, f"station offline: {station.id} is not connected"
            )

    async def _check_usable(self, station: StationLike, connector: Row[Any] | None) -> None:
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
            await self.resolve(command_id, result, message, station_status=reply.status)
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
        result: CommandResultType,
        message: str | None,
        station_status: str | None = None,
    ) -> bool:
        """Decide the command's one outcome and queue its delivery, in one transaction.

        Returns False if another path (a late answer, the sweeper) decided it first."""
        now = utcnow()
        async with self._sessions.begin() as s:
            command = await command_sql.resolve_command(
                await s.connection(),
                command_id,
                pending=CommandState.PENDING.value,
                state=CommandState.RESOLVED.value,
                result=result.value,
                message=message or None,
                station_status=station_status,
                now=now,
            )
            if command is None:
                log.info("command %s already resolved; %s ignored", command_id, result)
                return False
            party = await self._parties.get(s, command.party_id)
            assert party is not None
            queued_more = await self._after_effects(s, command, result)
            row = await enqueue(
                s,
                kind="COMMAND_RESULT",
                party=party,
                method="POST",
                url=command.response_url,
                body=self._wire.command_result(command.ocpi_version, result, message),
                correlation_id=command.correlation_id,
                command_id=command.id,
                horizon=self._settings.delivery_result_horizon,
                lease_seconds=self._settings.delivery_lease if self._deliver_now else None,
            )
        if self._deliver_now is not None:
            self._tasks.spawn(self._deliver_now(row, party))
        if queued_more or self._deliver_now is None:
            self._notify()
        return True

    async def _after_effects(
        self, s: AsyncSession, command: Row[Any], result: CommandResultType
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
        self, s: AsyncSession, command: Row[Any], reservation: Reservation
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
            expired = list(
                await s.scalars(
                    select(Command.id).where(
                        Command.state == CommandState.PENDING.value, Command.deadline < utcnow()
                    )
                )
            )
        count = 0
        for command_id in expired:
            if await self.resolve(
                command_id,
                CommandResultType.TIMEOUT,
                "no answer from the charge point before the deadline",
            ):
                count += 1
        return count

    async def stop(self) -> None:
        await self._tasks.stop()


def new_remote_start_id() -> int:
    """A positive int32 for OCPP 2.0.1's remoteStartId. Random rather than a counter so that no
    node has to coordinate; it is looked up together with the station id, where a collision of
    two live commands (one in two billion) is the only way to mislink."""
    return secrets.randbelow(2**31 - 1) + 1


def _eq(column: Any, value: str, case_insensitive: bool) -> Any:
    if case_insensitive:
        return func.lower(column) == value.lower()
    return column == value


def _request_record(request: dc.CommandRequest) -> dict[str, Any]:
    record = asdict(request)
    token = record.pop("token", None)
    if token is not None:
        record["token"] = token.get("raw") or token
    for key, value in list(record.items()):
        if isinstance(value, datetime):
            record[key] = value.isoformat()
    return record
