"""Which stations are served (docs/security.md#station-admission): the registry an operator
keeps (add, list, show, disable, enable, remove, set password) and the decision taken at each
WebSocket handshake, before it is accepted."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from chargegate.domain import station_calls as sc
from chargegate.domain.secret_configuration import (
    AUTHORIZATION_KEY,
    BASIC_AUTH_PASSWORD,
    is_password_key,
)
from chargegate.domain.station_calls import Outcome
from chargegate.domain.station_credentials import (
    STATION_ID,
    authorization_key_of,
    basic_credentials,
    check_password,
    check_station_id,
    hash_password,
    new_password,
    verify_password,
)

log = logging.getLogger(__name__)

AdmissionMode = Literal["open", "registered"]
# Answers that mean the station took the new password (1.6 RebootRequired: from its reboot on).
_TAKEN = (Outcome.ACCEPTED, Outcome.REBOOT_REQUIRED)


@dataclass(frozen=True, slots=True)
class AdmissionRow:
    """A station as admission sees it; `password_hash` never leaves the service."""

    station_id: str
    registered: bool
    disabled: bool
    password_hash: str | None
    ocpp_version: str | None
    last_seen: datetime | None

    @property
    def has_password(self) -> bool:
        return self.password_hash is not None


class UnknownStation(LookupError):
    pass


class StationAlreadyRegistered(Exception):
    pass


class PasswordNotTaken(Exception):
    """The station did not take the new password (offline, refused, timed out)."""


class AdmissionStore(Protocol):
    async def register(self, station_id: str, password_hash: str | None) -> AdmissionRow:
        """Register a station (creating its row, or marking one seen in open mode); raises
        StationAlreadyRegistered."""

    async def get(self, station_id: str) -> AdmissionRow | None: ...

    async def all(self) -> list[AdmissionRow]:
        """Every station, registered or only seen (open mode), by id."""

    async def set_disabled(self, station_id: str, disabled: bool) -> AdmissionRow | None:
        """None unless the station is registered."""

    async def set_password_hash(
        self, station_id: str, password_hash: str | None
    ) -> AdmissionRow | None:
        """None unless the station is registered."""

    async def unregister(self, station_id: str) -> bool:
        """Forget admission (registration, password, disabled); history stays. False if the
        station was not registered."""


class StationCaller(Protocol):
    """The part of the station router admission uses."""

    async def is_connected(self, station_id: str) -> bool: ...

    async def call(
        self, station_id: str, request: sc.StationRequest, timeout: float
    ) -> sc.StationReply: ...


Disconnect = Callable[[str, str], Awaitable[None]]


class Refusal(enum.Enum):
    """Why a handshake is refused, with the HTTP status the station gets."""

    INVALID_ID = 400
    CREDENTIALS = 401
    DISABLED = 403
    UNKNOWN = 404
    IN_USE = 409


@dataclass(frozen=True, slots=True)
class Admission:
    """A handshake's outcome: admitted, or refused with the reason to log."""

    refusal: Refusal | None = None
    reason: str = ""
    authenticated: bool = False

    @property
    def admitted(self) -> bool:
        return self.refusal is None


class StationAdmission:
    def __init__(
        self,
        store: AdmissionStore,
        mode: AdmissionMode,
        router: StationCaller | None = None,
        disconnect: Disconnect | None = None,
        call_timeout: float = 30.0,
        parallel_hashes: int = 2,
    ) -> None:
        """`router` and `disconnect` exist where stations connect (the gateway), not in the
        command line's tools. `parallel_hashes` bounds the scrypt checks run at once (each
        takes 16 MiB and a core for tens of milliseconds)."""
        self._store = store
        self.mode: AdmissionMode = mode
        self._router = router
        self._disconnect = disconnect
        self._call_timeout = call_timeout
        self._hashing = asyncio.Semaphore(parallel_hashes)

    # ---- registry ------------------------------------------------------------------------

    async def add(
        self, station_id: str, password: str | None = None, *, generate: bool = True
    ) -> tuple[AdmissionRow, str | None]:
        """Register a station. Without `password`, one is generated and returned (shown once)
        unless `generate` is false: then the station is admitted by its id alone."""
        check_station_id(station_id)
        chosen = self._chosen(password, generate)
        hashed = await self._hash(chosen) if chosen is not None else None
        row = await self._store.register(station_id, hashed)
        log.info(
            "station %s registered (%s)",
            station_id,
            "with a password" if hashed else "admitted by id alone",
        )
        return row, chosen if password is None else None

    async def all(self) -> list[AdmissionRow]:
        return await self._store.all()

    async def show(self, station_id: str) -> AdmissionRow:
        row = await self._store.get(station_id)
        if row is None:
            raise UnknownStation(f"unknown station {station_id}")
        return row

    async def set_disabled(self, station_id: str, disabled: bool) -> AdmissionRow:
        row = self._registered(station_id, await self._store.set_disabled(station_id, disabled))
        log.info("station %s %s", station_id, "disabled" if disabled else "enabled")
        if disabled:
            await self._drop(station_id, "disabled by the operator")
        return row

    async def remove(self, station_id: str) -> None:
        if not await self._store.unregister(station_id):
            raise UnknownStation(f"station {station_id} is not registered")
        log.info("station %s removed from the registry", station_id)
        await self._drop(station_id, "removed from the registry")

    async def set_password(
        self, station_id: str, password: str | None = None, *, generate: bool = True
    ) -> tuple[AdmissionRow, str | None]:
        """Store a new password (the operator configures the station with it), none (admitted
        by id alone, `generate` false), or a generated one, which is returned."""
        chosen = self._chosen(password, generate)
        hashed = await self._hash(chosen) if chosen is not None else None
        row = self._registered(station_id, await self._store.set_password_hash(station_id, hashed))
        log.info("station %s: password %s", station_id, "changed" if hashed else "removed")
        return row, chosen if password is None else None

    async def set_password_via_station(
        self, station_id: str, password: str | None = None
    ) -> tuple[AdmissionRow, str | None, str]:
        """Send the new password to the connected station (1.6 ChangeConfiguration
        AuthorizationKey, 2.0.1 SetVariables SecurityCtrlr.BasicAuthPassword) and store it
        only once the station took it. Returns the row, the generated password if any, and
        the station's status word."""
        if self._router is None:
            raise PasswordNotTaken("no station connections here: ask the running gateway")
        row = await self.show(station_id)
        self._registered(station_id, row if row.registered else None)
        chosen = self._chosen(password, True)
        assert chosen is not None
        if row.ocpp_version == "1.6":
            key, value = AUTHORIZATION_KEY, authorization_key_of(chosen)
        else:
            key, value = BASIC_AUTH_PASSWORD, chosen
        if not await self._router.is_connected(station_id):
            raise PasswordNotTaken(f"station {station_id} is not connected")
        reply = await self._router.call(
            station_id, sc.ChangeConfiguration(key, value), self._call_timeout
        )
        status = reply.status or reply.outcome.value
        if reply.outcome not in _TAKEN:
            raise PasswordNotTaken(f"station {station_id} did not take the password: {status}")
        stored = await self._store.set_password_hash(station_id, await self._hash(value))
        log.info("station %s took a new password through %s (%s)", station_id, key, status)
        return self._registered(station_id, stored), chosen if password is None else None, status

    async def configuration_accepted(self, station_id: str, key: str, value: str) -> None:
        """A ChangeConfiguration/SetVariables the station took (operator API): when it set the
        Basic auth password, the stored hash follows, or the station is locked out at its next
        connection."""
        if not is_password_key(key):
            return
        stored = await self._store.set_password_hash(station_id, await self._hash(value))
        if stored is None:
            log.warning(
                "station %s took a new %s but is not registered: its password is not checked",
                station_id,
                key,
            )
        else:
            log.info("station %s took a new %s; its stored password follows", station_id, key)

    # ---- the handshake ---------------------------------------------------------------------

    async def admit(self, station_id: str, authorization: str | None) -> Admission:
        """Whether to accept a WebSocket handshake for `station_id` with this Authorization
        header (docs/security.md#station-admission has the table)."""
        if not STATION_ID.match(station_id):
            return Admission(Refusal.INVALID_ID, "invalid station id")
        row = await self._store.get(station_id)
        if row is None or not row.registered:
            if self.mode == "registered":
                return Admission(Refusal.UNKNOWN, "station is not registered")
            return Admission(reason="open admission: unregistered station")
        authenticated = False
        if row.password_hash is not None:
            credentials = basic_credentials(authorization)
            if credentials is None:
                return Admission(Refusal.CREDENTIALS, "no HTTP Basic credentials")
            user, password = credentials
            if user != station_id:
                return Admission(Refusal.CREDENTIALS, "Basic auth user-id is not the station id")
            if not await self._verify(password, row.password_hash):
                return Admission(Refusal.CREDENTIALS, "wrong password")
            authenticated = True
        if row.disabled:
            return Admission(Refusal.DISABLED, "station is disabled", authenticated)
        if not authenticated and self._router is not None:
            # Without a password anyone can claim the id: the socket already there wins.
            if await self._router.is_connected(station_id):
                return Admission(
                    Refusal.IN_USE,
                    "already connected, and a station without password cannot replace its"
                    " connection",
                )
        return Admission(authenticated=authenticated)

    # ---- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _chosen(password: str | None, generate: bool) -> str | None:
        if password is not None:
            return check_password(password)
        return new_password() if generate else None

    @staticmethod
    def _registered(station_id: str, row: AdmissionRow | None) -> AdmissionRow:
        if row is None:
            raise UnknownStation(f"station {station_id} is not registered")
        return row

    async def _drop(self, station_id: str, reason: str) -> None:
        if self._disconnect is not None:
            await self._disconnect(station_id, reason)

    async def _hash(self, password: str) -> str:
        async with self._hashing:
            return await asyncio.to_thread(hash_password, password.encode())

    async def _verify(self, password: bytes, stored: str) -> bool:
        async with self._hashing:
            return await asyncio.to_thread(verify_password, password, stored)
