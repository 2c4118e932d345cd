"""Submitting an OCPI command: what can be answered at once (unknown location or EVSE, unknown
session, station offline, station locked, ...) is refused; anything else is stored with its
deadline, answered ACCEPTED and handed to the dispatch."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from chargegate.cluster.router import StationRouter
from chargegate.domain import commands as dc
from chargegate.domain import station_calls as sc
from chargegate.domain.clock import as_utc, utcnow
from chargegate.domain.commands import (
    CommandReply,
    CommandResponseType,
    CommandResultType,
    CommandState,
    Peer,
)
from chargegate.domain.ids import new_id, new_remote_start_id
from chargegate.domain.location_data import served_as_location
from chargegate.settings import Settings

from .command_dispatch import CommandDispatch, StationCall
from .command_outcomes import CommandOutcomes
from .ports import CommandStore, ConnectorView, Reserving, StationView

log = logging.getLogger(__name__)

OCPP16_ID_TAG_MAX = 20
STATUS_UNKNOWN_LOCATION = 2003


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

    station: StationView | None
    connector_id: int | None
    station_request: sc.StationRequest | None  # None: the outcome is known without a call
    known_result: tuple[CommandResultType, str] | None = None
    reserving: Reserving | None = None
    token_uid: str | None = None
    authorization_reference: str | None = None


class CommandSubmission:
    def __init__(
        self,
        settings: Settings,
        store: CommandStore,
        router: StationRouter,
        dispatch: CommandDispatch,
        outcomes: CommandOutcomes,
    ) -> None:
        self._settings = settings
        self._store = store
        self._router = router
        self._dispatch = dispatch
        self._outcomes = outcomes

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
            plan = await self._plan(peer, request, now)
        except Refused as refused:
            log.info(
                "%s from %s/%s refused: %s",
                command_type,
                peer.country_code,
                peer.party_id,
                refused.reply.message,
            )
            return refused.reply
        values = _record(
            command_id, peer, request, plan, response_url, correlation_id, now, deadline
        )
        if plan.reserving is None:
            await self._store.record(values)
        else:
            # The station is given the reservation's id, known once it is stored.
            assert isinstance(request, dc.ReserveNow) and plan.connector_id is not None
            ocpp_id = await self._store.record_reserving(values, plan.reserving)
            plan.station_request = sc.Reserve(
                connector_id=plan.connector_id,
                expiry_date=request.expiry_date,
                id_token=request.token.uid,
                reservation_id=ocpp_id,
                token_type=request.token.type,
            )

        if plan.known_result is not None:
            await self._outcomes.resolve(command_id, command_type, *plan.known_result)
        elif plan.station_request is not None:
            assert plan.station is not None
            self._dispatch.start(
                StationCall(
                    command_id,
                    command_type,
                    plan.station.id,
                    plan.connector_id,
                    plan.station_request,
                    deadline,
                )
            )
        return CommandReply(CommandResponseType.ACCEPTED, command_id=command_id)

    async def _plan(self, peer: Peer, request: dc.CommandRequest, now: datetime) -> _Plan:
        """Decide what can be decided at once; raises Refused for a synchronous answer."""
        ci = _ids_case_insensitive(peer)
        match request:
            case dc.StartSession():
                return await self._plan_start(request, await self._locate(peer, request))
            case dc.UnlockConnector():
                return await self._plan_unlock(request, await self._locate(peer, request))
            case dc.ReserveNow():
                return await self._plan_reserve(
                    peer, request, await self._locate(peer, request), now
                )
            case dc.StopSession():
                return await self._plan_stop(peer, request, ci)
            case dc.CancelReservation():
                return await self._plan_cancel(peer, request, ci)
        raise TypeError(f"no plan for {type(request).__name__}")

    async def _locate(
        self, peer: Peer, request: dc.StartSession | dc.ReserveNow | dc.UnlockConnector
    ) -> tuple[StationView, ConnectorView | None]:
        """The station (and connector) a request names by location id and EVSE uid."""
        if isinstance(request, dc.StartSession) and peer.profile == "gireve":
            if not request.evse_uid:
                raise _refuse(
                    CommandResponseType.REJECTED,
                    "evse_uid is required for START_SESSION by the GIREVE IOP profile",
                    2001,
                )
        ci = _ids_case_insensitive(peer)
        target = await self._store.find_target(request.location_id, request.evse_uid, ci)
        # An unpublished station, and an EVSE its Location does not show (a connector not
        # described), are answered exactly as unknown ones (docs/security.md#publishing).
        if target.station is None or not served_as_location(
            target.station.published, self._settings.ocpp_admission
        ):
            raise _unknown(f"unknown location {request.location_id!r}")
        if request.evse_uid and (
            target.connector is None or (target.station.site and not target.connector.spec)
        ):
            location = target.station.location_id or target.station.id
            raise _unknown(f"unknown EVSE {request.evse_uid!r} at location {location!r}")
        return target.station, target.connector

    async def _plan_unlock(
        self, request: dc.UnlockConnector, target: tuple[StationView, ConnectorView | None]
    ) -> _Plan:
        station, connector = target
        if request.connector_id != "1":
            raise _unknown(f"unknown connector_id {request.connector_id!r}")
        assert connector is not None  # UnlockConnector always names an EVSE
        await self._check_online(station)
        return _Plan(station, connector.connector_id, sc.Unlock(connector.connector_id))

    async def _plan_start(
        self, request: dc.StartSession, target: tuple[StationView, ConnectorView | None]
    ) -> _Plan:
        station, connector = target
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

    async def _plan_reserve(
        self,
        peer: Peer,
        request: dc.ReserveNow,
        target: tuple[StationView, ConnectorView | None],
        now: datetime,
    ) -> _Plan:
        station, connector = target
        await self._check_usable(station, connector)
        connector_id = connector.connector_id if connector else 0
        self._check_token_fits(station, request.token.uid)
        if as_utc(request.expiry_date) <= now:
            raise _refuse(CommandResponseType.REJECTED, "expiry_date is in the past", 2001)
        return _Plan(
            station,
            connector_id,
            None,  # the Reserve call, once the reservation's id is known
            reserving=Reserving(
                party_id=peer.id,
                station_id=station.id,
                reservation_id=request.reservation_id,
                connector_id=connector_id,
                expiry_date=request.expiry_date,
            ),
            token_uid=request.token.uid,
            authorization_reference=request.authorization_reference,
        )

    async def _plan_stop(self, peer: Peer, request: dc.StopSession, ci: bool) -> _Plan:
        session = await self._store.session_to_stop(request.session_id, ci)
        if session is None:
            raise _refuse(
                CommandResponseType.UNKNOWN_SESSION, f"session {request.session_id!r} is not known"
            )
        if session.party_id != peer.id:
            raise _refuse(CommandResponseType.REJECTED, "session does not belong to this party")
        if session.status != "ACTIVE" or session.transaction_id is None:
            raise _refuse(CommandResponseType.REJECTED, f"session is {session.status}, not ACTIVE")
        await self._check_online(session.station)
        return _Plan(session.station, session.connector_id, sc.RemoteStop(session.transaction_id))

    async def _plan_cancel(self, peer: Peer, request: dc.CancelReservation, ci: bool) -> _Plan:
        known = await self._store.reservation_to_cancel(peer.id, request.reservation_id, ci)
        if known is None:
            # No synchronous value exists for this; the result says it (docs/decisions.md).
            return _Plan(
                None,
                None,
                None,
                known_result=(
                    CommandResultType.UNKNOWN_RESERVATION,
                    f"reservation {request.reservation_id!r} is not known",
                ),
            )
        await self._check_online(known.station)
        return _Plan(
            known.station,
            known.connector_id,
            sc.CancelReservation(known.ocpp_reservation_id),
        )

    async def _check_online(self, station: StationView) -> None:
        if not await self._router.is_connected(station.id):
            raise _refuse(
                CommandResponseType.REJECTED, f"station offline: {station.id} is not connected"
            )

    async def _check_usable(self, station: StationView, connector: ConnectorView | None) -> None:
        if station.locked or (connector is not None and connector.locked):
            raise _refuse(CommandResponseType.REJECTED, "EVSE is locked by the operator")
        await self._check_online(station)

    def _check_token_fits(self, station: StationView, uid: str) -> None:
        if station.ocpp_version == "1.6" and len(uid) > OCPP16_ID_TAG_MAX:
            raise _refuse(
                CommandResponseType.REJECTED,
                f"token uid is {len(uid)} characters; an OCPP 1.6 station accepts at most "
                f"{OCPP16_ID_TAG_MAX} in idTag",
            )


def _ids_case_insensitive(peer: Peer) -> bool:
    return peer.ocpi_version != "2.1.1"  # 2.2.1 ids are CiString


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
    `asdict`, whose deep copy of the token costs a visible share of a command's CPU."""
    record: dict[str, Any] = {}
    for f in fields(request):
        value = getattr(request, f.name)
        if isinstance(value, dc.Token):
            value = value.raw or asdict(value)
        elif isinstance(value, datetime):
            value = value.isoformat()
        record[f.name] = value
    return record
