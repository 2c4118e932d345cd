"""Requests per second per peer: a token bucket per OCPI party, eMSP-side peer and operator API
key, checked once the caller is known (ocpi/auth.py, ocpi/emsp/auth.py, api/auth.py).

Each bucket holds up to `burst` requests and refills at `rate` per second; a request finds a
token or is told how long until there is one (HTTP 429 with Retry-After). The buckets live in
the process: in a cluster each node limits on its own, so a peer spread over N nodes by the
load balancer gets up to N times the rate. The check is a dict lookup and a few float
operations, no allocation once a peer has its bucket (the command lane calls it per command)."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBuckets:
    """One bucket per key (a row id: parties, peers and keys are few and known)."""

    __slots__ = ("_buckets", "_clock", "burst", "rate")

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._clock = clock
        self._buckets: dict[int, list[float]] = {}  # key -> [tokens, when counted]

    def take(self, key: int) -> float:
        """0.0 when the request may go; else the seconds until it may (it is not counted)."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            self._buckets[key] = [self.burst - 1.0, now]
            return 0.0
        tokens = bucket[0] + (now - bucket[1]) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0.0
        bucket[0] = tokens
        return (1.0 - tokens) / self.rate


class PeerRates:
    """The buckets of each kind of caller, all with the same rate and burst."""

    def __init__(self, rate: float, burst: float) -> None:
        self.parties = TokenBuckets(rate, burst)  # OCPI parties calling our CPO role
        self.peers = TokenBuckets(rate, burst)  # CPOs calling our eMSP role
        self.operator_keys = TokenBuckets(rate, burst)  # the operator and eMSP APIs

    def refusal(self, wait: float) -> tuple[str, str]:
        """(message, Retry-After) for a caller over its rate."""
        rate = self.parties.rate
        retry_after = str(max(1, int(wait + 0.999)))
        message = (
            f"too many requests: at most {rate:g} per second (bursts of "
            f"{self.parties.burst:g}) per caller; retry after {retry_after} s"
        )
        return message, retry_after
