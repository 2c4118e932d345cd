"""What every simulated station does whatever its OCPP version: connect, boot, stay connected,
record the CSMS's CALLs and answer them as scripted.

A subclass (per OCPP version) adds the messages and the handlers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, ClassVar, Generic, Protocol, Self, TypedDict, TypeVar

from ocpp.charge_point import ChargePoint
from ocpp.exceptions import InternalError, OCPPError
from ocpp.exceptions import NotImplementedError as OcppNotImplementedError
from ocpp.messages import MessageType, unpack
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

from chargegate.sim.script import Behaviour, Script, status_for

# The ocpp library logs every frame at INFO; a separate logger lets a fleet silence that alone.
WIRE_LOGGER = logging.getLogger("chargegate.sim.wire")

# What a failed connect or boot raises; run() retries after these when asked to reconnect.
CONNECT_ERRORS = (OSError, InvalidHandshake, TimeoutError, ConnectionClosed, OCPPError)

FollowUp = Callable[[], Coroutine[Any, Any, None]]


class HasReservationId(Protocol):
    reservation_id: int


# A version's reservation, and the type of its transaction ids (int in 1.6, str in 2.0.1).
R = TypeVar("R", bound=HasReservationId)
TransactionId = TypeVar("TransactionId", int, str)


class StationOptions(TypedDict, total=False):
    """What a simulated station of either version may be given besides its id, URL, outlets
    and model (see SimulatedStationBase.__init__ for the defaults)."""

    script: Script | None
    heartbeat_interval: float | None
    auto_transactions: bool
    meter_wh_per_tick: int
    meter_interval: float | None
    response_timeout: float
    vendor: str
    password: str | bytes | None
    ssl_context: ssl.SSLContext | None


class SimulatedStationBase(ChargePoint, Generic[R, TransactionId]):
    """The client side of one OCPP-J connection; subclasses also derive from the versioned
    `ocpp.vXX.ChargePoint` so that the library validates against that version's schemas.

    `auto_transactions` makes the station play its part after accepted commands (start, stop,
    unlock, reset); without it, accepted commands are only answered."""

    SUBPROTOCOL: ClassVar[Subprotocol]

    def __init__(
        self,
        station_id: str,
        url_base: str,
        model: str,
        script: Script | None = None,
        heartbeat_interval: float | None = None,
        auto_transactions: bool = True,
        meter_wh_per_tick: int = 250,
        meter_interval: float | None = None,
        response_timeout: float = 30.0,
        vendor: str = "chargegate",
        password: str | bytes | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(station_id, None, response_timeout=response_timeout, logger=WIRE_LOGGER)
        # Named after the version's module, as chargegate.sim.station16 logs for 1.6: operators
        # and benchmarks pick a version's connect/boot lines by logger name.
        self._log = logging.getLogger(type(self).__module__)
        version = self._ocpp_version
        if script is not None and script.version != version:
            raise ValueError(
                f"{station_id} speaks OCPP {version} but the script is for OCPP {script.version}"
            )
        self.url = f"{url_base.rstrip('/')}/{station_id}"
        self.script = script if script is not None else Script(version=version)
        self.heartbeat_interval = heartbeat_interval
        self.auto_transactions = auto_transactions
        self.meter_wh_per_tick = meter_wh_per_tick
        self.meter_interval = meter_interval
        self.vendor = vendor
        self.model = model
        # HTTP Basic password (Security Profile 1 and 2): bytes for a 1.6 AuthorizationKey,
        # which may be any octets. The CSMS may change it (AuthorizationKey, BasicAuthPassword);
        # the next connection uses the new one.
        self.password: bytes | None = password.encode() if isinstance(password, str) else password
        self.ssl_context = ssl_context
        self.boot_status: str | None = None
        # Set once BootNotification is accepted and the initial statuses are sent.
        self.ready = asyncio.Event()
        # Every CALL the CSMS sent, as (action, camelCase payload as on the wire).
        self.received: list[tuple[str, dict[str, Any]]] = []

        self._ws: ClientConnection | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._arrival = asyncio.Event()
        self._taken: dict[str, int] = {}
        # Per CALL unique id: the behaviour drawn from the script, and what to do once answered.
        self._behaviours: dict[str, Behaviour] = {}
        self._follow_ups: dict[str, list[FollowUp]] = {}
        # Outlets (connectors, EVSEs) between an accepted remote start and its transaction.
        self._starting: set[int] = set()
        # Per reservation id, the task that ends it at its expiry; per transaction id, the task
        # that sends its periodic meter values.
        self._reservation_timers: dict[int, asyncio.Task[None]] = {}
        self._samplers: dict[TransactionId, asyncio.Task[None]] = {}

    # -- what a version adds ----------------------------------------------------------------

    async def _boot_and_report(self) -> None:
        """Boot until accepted, then report every connector."""
        raise NotImplementedError

    async def send_heartbeat(self) -> str:
        raise NotImplementedError

    def _heartbeat_seconds(self) -> float:
        raise NotImplementedError

    @property
    def reservations(self) -> dict[int, R]:
        raise NotImplementedError

    @property
    def transactions(self) -> dict[TransactionId, Any]:
        raise NotImplementedError

    async def _expire(self, reservation: R) -> None:
        """At the reservation's expiry, end it and tell the CSMS as the version does."""
        raise NotImplementedError

    async def _sample_meter(self, transaction_id: TransactionId, interval: float) -> None:
        """Send the transaction's meter values every `interval` seconds while it lasts."""
        raise NotImplementedError

    def _outlets(self) -> str:
        """What the boot log line reports as available, e.g. "2 EVSEs"."""
        raise NotImplementedError

    # -- reservation expiry and meter sampling ----------------------------------------------

    def _resume_timers(self) -> None:
        """Restart what a lost connection cancelled (reservation expiry, meter sampling)."""
        for reservation in self.reservations.values():
            timer = self._reservation_timers.get(reservation.reservation_id)
            if timer is None or timer.done():
                self._start_expiry(reservation)
        if not self.meter_interval:
            return
        for transaction_id in self.transactions:
            sampler = self._samplers.get(transaction_id)
            if sampler is None or sampler.done():
                self._start_sampler(transaction_id, self.meter_interval)

    def _start_expiry(self, reservation: R) -> None:
        reservation_id = reservation.reservation_id
        self._reservation_timers[reservation_id] = self._spawn(
            self._expire(reservation), f"reservation-{reservation_id}"
        )

    def _forget_reservation(self, reservation_id: int) -> R | None:
        """Drop the reservation and its expiry timer; returns the reservation, if there was one."""
        timer = self._reservation_timers.pop(reservation_id, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
        return self.reservations.pop(reservation_id, None)

    def _start_sampler(self, transaction_id: TransactionId, interval: float) -> None:
        self._samplers[transaction_id] = self._spawn(
            self._sample_meter(transaction_id, interval), f"meter-{transaction_id}"
        )

    def _stop_sampler(self, transaction_id: TransactionId) -> None:
        sampler = self._samplers.pop(transaction_id, None)
        if sampler is not None and sampler is not asyncio.current_task():
            sampler.cancel()

    # -- connection lifecycle ---------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._serve_task is not None and not self._serve_task.done()

    async def __aenter__(self) -> Self:
        await self.connect_and_boot()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect_and_boot(self) -> None:
        """Connect, boot until accepted, report every connector; return once `ready` is set."""
        if self.connected:
            raise RuntimeError(f"{self.id} is already connected")
        self._closing = False
        self.ready.clear()
        ws = await connect(
            self.url,
            subprotocols=[self.SUBPROTOCOL],
            compression=None,
            additional_headers=self._authorization(),
            ssl=self.ssl_context if self.url.startswith("wss:") else None,
        )
        if ws.subprotocol != self.SUBPROTOCOL:
            await ws.close()
            raise ConnectionError(f"{self.url} did not agree to subprotocol {self.SUBPROTOCOL}")
        self._ws = ws
        self._connection = ws
        # Responses left from a previous connection must not be matched to new CALLs.
        self._response_queue: asyncio.Queue[Any] = asyncio.Queue()
        self._serve_task = asyncio.create_task(self._serve(), name=f"{self.id}:serve")
        self._log.info("%s: connected to %s", self.id, self.url)
        try:
            await self._boot_and_report()
        except BaseException:
            await self._disconnect()
            raise
        self._spawn(self._heartbeat_loop(), "heartbeat")
        self._resume_timers()
        self.ready.set()
        self._log.info("%s: booted, %s available", self.id, self._outlets())

    def _authorization(self) -> dict[str, str]:
        if self.password is None:
            return {}
        credentials = base64.b64encode(self.id.encode() + b":" + self.password).decode()
        return {"Authorization": f"Basic {credentials}"}

    def take_password(self, password: bytes) -> None:
        """A new Basic auth password from the CSMS: used from the next connection on."""
        self.password = password
        self._log.info("%s: took a new Basic auth password", self.id)

    async def run(self, reconnect_delay: float | None = None) -> None:
        """Connect, boot and serve until closed; with `reconnect_delay`, reconnect after every
        lost or refused connection until `close()` is called."""
        try:
            while True:
                try:
                    await self.connect_and_boot()
                except CONNECT_ERRORS as exc:
                    if reconnect_delay is None or self._closing:
                        raise
                    self._log.warning(
                        "%s: cannot connect (%s), retrying in %ss", self.id, exc, reconnect_delay
                    )
                    await asyncio.sleep(reconnect_delay)
                    continue
                await self.wait_closed()
                if self._closing or reconnect_delay is None:
                    return
                self._log.info("%s: connection lost, reconnecting in %ss", self.id, reconnect_delay)
                await asyncio.sleep(reconnect_delay)
        finally:
            await self.close()

    async def wait_closed(self) -> None:
        if self._serve_task is not None:
            # Shielded: a cancelled waiter must not take the receive loop down with it.
            await asyncio.shield(self._serve_task)

    async def close(self) -> None:
        self._closing = True
        await self._disconnect()

    async def _disconnect(self) -> None:
        self._cancel_tasks()
        if self._ws is not None:
            await self._ws.close()
        if self._serve_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._serve_task
        await self._drain_tasks()

    async def _serve(self) -> None:
        try:
            await self.start()
        except ConnectionClosed as exc:
            self._log.info("%s: disconnected (%s)", self.id, exc)
        finally:
            self.ready.clear()
            self._cancel_tasks()

    def _cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def _drain_tasks(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run `coro` for as long as the connection lasts; a failure is logged, not raised."""
        task = asyncio.create_task(coro, name=f"{self.id}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and not isinstance(exc, ConnectionClosed):
            self._log.warning("%s: %s failed: %r", self.id, task.get_name(), exc, exc_info=exc)

    async def _heartbeat_loop(self) -> None:
        while True:
            interval = self._heartbeat_seconds()
            if interval <= 0:
                # The CSMS asked for no heartbeats; look again in case that changes.
                await asyncio.sleep(1)
                continue
            await asyncio.sleep(interval)
            try:
                await self.send_heartbeat()
            except (TimeoutError, OCPPError) as exc:
                self._log.warning("%s: heartbeat failed: %r", self.id, exc)

    # -- what the CSMS sent -----------------------------------------------------------------

    # A timeout argument rather than asyncio.timeout() around the call keeps test lines short.
    async def wait_for_call(self, action: str, timeout: float = 1.0) -> dict[str, Any]:
        """Payload of the next CALL of `action` not returned by an earlier wait_for_call,
        waiting up to `timeout` seconds for it; TimeoutError if none arrives."""
        async with asyncio.timeout(timeout):
            while True:
                arrival = self._arrival
                wanted = self._taken.get(action, 0)
                seen = self.calls(action)
                if len(seen) > wanted:
                    self._taken[action] = wanted + 1
                    return seen[wanted]
                await arrival.wait()

    def calls(self, action: str) -> list[dict[str, Any]]:
        return [payload for name, payload in self.received if name == action]

    def _record(self, action: str, payload: dict[str, Any]) -> None:
        self.received.append((action, payload))
        # Swap before setting so that waiters woken now re-check against a fresh event.
        arrival, self._arrival = self._arrival, asyncio.Event()
        arrival.set()

    async def route_message(self, raw_msg: str) -> None:
        try:
            msg = unpack(raw_msg)
        except OCPPError:
            await super().route_message(raw_msg)  # the library logs what was wrong with it
            return
        if msg.message_type_id != MessageType.Call:
            await super().route_message(raw_msg)
            return

        self._record(msg.action, msg.payload)
        behaviour = self.script.take(msg.action)
        if behaviour == Behaviour.SILENT:
            # Dropped here rather than in a sleeping handler: start() handles one frame at a
            # time, so a handler that waits would stall every later frame too.
            self._log.info("%s: staying silent on %s %s", self.id, msg.action, msg.unique_id)
            return
        if behaviour == Behaviour.DISCONNECT:
            self._log.info("%s: disconnecting on %s %s", self.id, msg.action, msg.unique_id)
            if self._ws is not None:
                await self._ws.close()
            return
        if behaviour in (Behaviour.CALL_ERROR, Behaviour.NOT_IMPLEMENTED):
            error: OCPPError = (
                InternalError(details={"cause": f"{msg.action} scripted to fail"})
                if behaviour == Behaviour.CALL_ERROR
                else OcppNotImplementedError(details={"cause": f"{msg.action} scripted as absent"})
            )
            await self._send(msg.create_call_error(error).to_json())
            return

        self._behaviours[msg.unique_id] = behaviour
        try:
            await super().route_message(raw_msg)
        finally:
            self._behaviours.pop(msg.unique_id, None)
            follow_ups = self._follow_ups.pop(msg.unique_id, [])
        # Only now is the CALLRESULT on the wire: what the station does next must come after it.
        for follow_up in follow_ups:
            self._spawn(follow_up(), f"{msg.action}-follow-up")

    def _answer(self, unique_id: str, action: str) -> str:
        """The status the script gives the CALL `unique_id` of `action`."""
        behaviour = self._behaviours.get(unique_id) or self.script.behaviour(action)
        return status_for(action, behaviour, self.script.version)

    def _after_answer(self, unique_id: str, follow_up: FollowUp) -> None:
        self._follow_ups.setdefault(unique_id, []).append(follow_up)
