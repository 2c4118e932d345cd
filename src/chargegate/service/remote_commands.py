"""Operator remote commands behind one name: requests (remote_operator_requests.py), remote
start attempts (remote_start_attempts.py), locks (station_locks.py), all sharing records and
the cap on requests in flight (remote_requests.py)."""

from __future__ import annotations

from chargegate.cluster.cap import ParallelCap
from chargegate.cluster.router import StationRouter
from chargegate.settings import Settings

from .remote_errors import RemoteCommandError
from .remote_operator_requests import ConfigurationItem, ConfigurationTaken, OperatorRequests
from .remote_request_cap import RequestSlots
from .remote_requests import (
    ACCEPTED,
    EXPIRED,
    FAILED,
    OFFLINE,
    PENDING,
    REJECTED,
    SUCCEEDED,
    TIMEOUT,
    WAITING,
    RemoteCalls,
    RemoteRequestStore,
    record_status,
)
from .remote_start_attempts import RemoteStartAttempts
from .station_locks import OnLock, StationLocks

__all__ = [
    "ACCEPTED",
    "EXPIRED",
    "FAILED",
    "OFFLINE",
    "PENDING",
    "REJECTED",
    "SUCCEEDED",
    "TIMEOUT",
    "WAITING",
    "ConfigurationItem",
    "RemoteCommandError",
    "RemoteCommandService",
    "record_status",
]


class RemoteCommandService:
    """What the operator API and the sweeper call; each job is done by its own class."""

    def __init__(
        self,
        settings: Settings,
        store: RemoteRequestStore,
        router: StationRouter,
        cap: ParallelCap,
        on_lock: OnLock | None = None,
        on_configuration_taken: ConfigurationTaken | None = None,
    ) -> None:
        """`on_lock(station, connector or None, why)` runs after a lock is set: reservations
        there can no longer be honoured. `on_configuration_taken(station, key, value)` runs for
        each key a station took through change_configurations."""
        self._cap = cap
        self.calls = RemoteCalls(settings, store, router, RequestSlots(cap))
        self.requests = OperatorRequests(self.calls, on_configuration_taken)
        self.attempts = RemoteStartAttempts(self.calls, self.requests)
        self.locks = StationLocks(store, on_lock)
        self.get_configuration = self.requests.get_configuration
        self.stored_configuration = self.requests.stored_configuration
        self.change_configurations = self.requests.change_configurations
        self.reset = self.requests.reset
        self.unlock_connector = self.requests.unlock_connector
        self.remote_stop = self.requests.remote_stop
        self.clear_cache = self.requests.clear_cache
        self.get = self.requests.get
        self.remote_start_attempt = self.attempts.remote_start_attempt
        self.tick = self.attempts.tick
        self.set_station_lock = self.locks.set_station_lock
        self.set_connector_lock = self.locks.set_connector_lock

    async def stop(self) -> None:
        await self.calls.stop()
