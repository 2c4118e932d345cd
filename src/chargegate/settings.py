"""Configuration from CHARGEGATE_* environment variables, with single-machine defaults."""

from __future__ import annotations

import socket
import uuid
from functools import cached_property
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from chargegate.domain.outbound_policy import OutboundPolicy


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHARGEGATE_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./chargegate.db"
    # PostgreSQL connections per node: kept open, and opened beyond that under load but closed
    # again when returned (SQLite always has one). Each command holds one briefly several
    # times. Overflow connections churn under load (a new connection is several round trips),
    # so the default keeps 40 and opens none (docs/performance.md#postgresql-connections).
    database_pool_size: int = Field(40, ge=1)
    database_max_overflow: int = Field(0, ge=0)
    public_url: str = "http://127.0.0.1:8080"
    country_code: str = Field("NL", min_length=2, max_length=2)
    party_id: str = Field("CGW", min_length=3, max_length=3)
    business_name: str = "chargegate CPO"
    currency: str = "EUR"

    # Seconds announced to the eMSP as CommandResponse.timeout (2.2.1).
    command_timeout: float = 60.0
    # The station must answer this many seconds before the announced timeout ends, so that
    # TIMEOUT reaches the eMSP before it gives up (docs/decisions.md#timeout-margin).
    command_timeout_margin: float = 10.0

    # Outbox delivery: jittered exponential backoff.
    delivery_retry_base: float = 1.0
    delivery_retry_max: float = 300.0
    delivery_result_horizon: float = 3600.0
    delivery_poll_interval: float = 1.0
    delivery_http_timeout: float = 10.0
    delivery_lease: float = 30.0
    # Bulkheads (docs/guarantees.md#delivery): connections open at once to one peer's origin
    # (scheme, host, port) for results, Sessions and CDRs; a peer that never answers holds at
    # most these, and its requests wait for them, never for another peer's.
    # 50: a hub's results at full speed (50 in flight) each get a connection without waiting
    # (docs/performance.md#targets); a dead peer holds no more file descriptors than that.
    delivery_peer_connections: int = Field(50, ge=1)
    # Idle keep-alive connections kept per origin: as many as may be open, so a busy peer's
    # connections are reused rather than closed and opened again between bursts.
    delivery_peer_keepalive: int = Field(50, ge=0)
    # A delivery the peer refuses for good (HTTP 4xx but 401/408/429, or an OCPI 2xxx
    # status_code) is tried this many times, then set aside as a dead letter for the operator
    # (`chargegate delivery list-dead`); a peer's Session/CDR FIFO moves on past it.
    delivery_dead_letter_after: int = Field(3, ge=1)
    # Seconds between probes of a peer whose deliveries fail (refused, 5xx, no answer): its
    # oldest waiting item is sent again this often whatever its own backoff, and the first
    # 2xx makes all its waiting items due at once. Bounds recovery after a peer's outage.
    delivery_peer_probe: float = Field(10.0, gt=0)
    # Seconds one webhook event may keep failing before the webhook is set aside as a dead
    # letter (no more attempts until its owner resumes it: POST /emsp/webhook/retry).
    webhook_horizon: float = Field(86400.0, gt=0)

    # How long a START_SESSION may wait for the station's StartTransaction to be linked to it.
    session_link_window: float = 900.0

    # Operator remote-commands API (docs/decisions.md#operator-api).
    operator_timeout: float = 30.0  # a synchronous call waits this long for the station
    operator_parallel_cap: int = 10  # remote requests in flight at once
    remote_start_valid_minutes: float = 10.0  # validUntil default
    # Seconds in an operator "minute" (stopMinutes, validUntil default): tests shorten it.
    operator_minute_seconds: float = 60.0

    # How often deadlines, remote start attempts and stopMinutes are checked.
    sweep_interval: float = 1.0

    # Communication log frames older than this many days are deleted (0 keeps every frame).
    comm_log_retention_days: float = 30.0

    # Cluster: set a Redis URL to run as one of several nodes (PostgreSQL as the database).
    redis_url: str | None = None
    node_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}")
    redis_prefix: str = "cg"  # keys and channels of this cluster in Redis
    registry_ttl: float = 30.0  # a dead node's stations vanish from the registry after this
    registry_refresh: float = 10.0

    # eMSP side: our identity as an eMSP (default: the CPO identity above) and its timing.
    emsp_country_code: str | None = Field(None, min_length=2, max_length=2)
    emsp_party_id: str | None = Field(None, min_length=3, max_length=3)
    emsp_business_name: str | None = None
    emsp_http_timeout: float = 30.0  # seconds a CPO gets to answer a command we send
    # OCPI 2.1.1 CPOs announce no timeout: wait this long for the result before EXPIRED.
    emsp_default_result_timeout: float = 120.0
    # A Session without an authorization reference is linked to a START_SESSION for the same
    # token and location sent at most this many seconds before.
    emsp_match_window: float = 900.0

    # Which stations are served (docs/security.md#station-admission): "registered" only those
    # an operator added (and, with a password, only after HTTP Basic auth); "open" is the
    # development mode: any station id is served and published, with a warning at every start.
    ocpp_admission: Literal["open", "registered"] = "registered"
    # Outbound calls (response_url, handshakes, pushes, webhooks) to loopback, private,
    # link-local (cloud metadata) or reserved addresses are refused unless listed here:
    # comma-separated host names and CIDRs, e.g. "127.0.0.0/8,localhost" for local peers.
    # A host name listed also lets any peer's response_url use it, on any port
    # (docs/security.md#outbound-calls-ssrf). Default: none.
    outbound_allow: str = ""

    # TLS (OCPP Security Profile 2, docs/security.md#tls): PEM files of the server certificate
    # (with its chain) and its private key; both set, `serve` speaks https:// and wss:// only.
    # None (default): plain HTTP, for a TLS-terminating reverse proxy or development.
    tls_certfile: str | None = None
    tls_keyfile: str | None = None

    # Limits (docs/security.md#limits). The largest request body the OCPI, operator and eMSP
    # APIs take, in bytes (HTTP 413 beyond): 1 MiB holds a CDR of thousands of charging
    # periods or a Location of hundreds of EVSEs.
    max_body_bytes: int = Field(1_048_576, ge=1024)
    # Seconds a client has to send a request's headers, from connecting (or from the first
    # byte of a next request on a kept-alive connection); then the connection is closed.
    http_header_timeout: float = Field(10.0, gt=0)
    # Seconds a request body may stop arriving while the gateway waits for the rest of it;
    # then the connection is closed.
    http_body_timeout: float = Field(30.0, gt=0)
    # Seconds a kept-alive connection may sit idle between requests (uvicorn's default).
    http_keep_alive_timeout: float = Field(5.0, gt=0)
    # Open connections (HTTP and station WebSockets) from one client address; 0: no cap. The
    # stations of a site share one address behind its NAT, and behind a reverse proxy every
    # connection comes from the proxy: raise it or set 0 there.
    max_connections_per_address: int = Field(1000, ge=0)
    # Open connections in total; 0: the open-file limit less a tenth (at least 100) kept for
    # the database, logs and outgoing calls, so the process never runs out of files.
    max_connections: int = Field(0, ge=0)
    # Requests per second per OCPI party, eMSP-side peer and operator API key (a token bucket
    # per node: a cluster of N nodes lets a peer make up to N times this); 0: no limit. HTTP
    # 429 with Retry-After beyond. Hubs send bursts: `rate_limit_burst` requests at once.
    rate_limit_per_second: float = Field(50.0, ge=0)
    rate_limit_burst: int = Field(200, ge=1)

    # Secrets at rest (docs/security.md#secrets): tokens B, a CPO's tokens C and webhook
    # secrets are sealed with Fernet under these comma-separated keys; the first seals, all
    # open (put a new key in front to rotate). Unset: a key file, created 0600 on first start
    # beside an SQLite database (else ./chargegate.key, with a warning: a cluster's nodes
    # must share one key, so set this there). `secret_key_file` overrides where that file is.
    secret_key: str | None = Field(None, repr=False)
    secret_key_file: str | None = None

    # Seconds between Heartbeats, told to stations in the BootNotification answer.
    heartbeat_interval: int = 300
    # Liveness (docs/guarantees.md#liveness): a station that sent no frame at all for
    # heartbeat_interval × this is taken as gone (its socket closed, offline at once); 2.5
    # forgives one lost Heartbeat and a late one. 0 turns it off.
    heartbeat_grace_factor: float = Field(2.5, ge=0)
    # Seconds between WebSocket pings, and seconds a pong may take before the connection is
    # closed: a half-open TCP connection (a dead NAT, a station without power) is found within
    # their sum even when the heartbeat interval is long. 0 turns pings (or the timeout) off.
    ws_ping_interval: float = Field(30.0, ge=0)
    ws_ping_timeout: float = Field(30.0, ge=0)

    # OCPP-J limits per station connection (docs/security.md#ocpp-j-robustness).
    # Largest frame in bytes (UTF-8), closed with 1009 beyond: a 1.6 GetConfiguration answer or a
    # 2.0.1 NotifyReport page with long values and certificates runs to tens of KB; 256 KiB
    # leaves room for those and bounds what one frame can cost. uvicorn's ws_max_size is set to
    # the same value by `serve`.
    ocpp_max_frame_bytes: int = Field(262144, ge=1024)
    # Frames a second a station may send after a burst of `ocpp_frame_burst` (a token bucket);
    # beyond it its frames are read more slowly, and a station over the rate for
    # `ocpp_throttle_close_seconds` without a pause is closed with 1008. A real station sends a
    # frame every few seconds; a backlog of offline MeterValues after a reconnect, hundreds.
    ocpp_max_frames_per_second: float = Field(20.0, gt=0)
    ocpp_frame_burst: int = Field(200, ge=1)
    ocpp_throttle_close_seconds: float = Field(300.0, gt=0)
    # Connector and EVSE ids a station may report: 0 (the station itself) to this; anything
    # else is a PropertyConstraintViolation and nothing is stored.
    ocpp_max_connectors: int = Field(64, ge=1)
    # Bytes of frames (both directions) one station may write into the communication log per
    # minute; beyond it frames are counted, not stored, and one log line says so. 1 MiB is
    # minutes of a busy station's ordinary traffic.
    comm_log_station_bytes_per_minute: int = Field(1048576, ge=0)
    ws_per_message_deflate: bool = False

    @field_validator("outbound_allow")
    @classmethod
    def _parse_outbound_allow(cls, value: str) -> str:
        OutboundPolicy.parse(value)  # a typo fails at start, not at the first refused call
        return value

    @cached_property
    def outbound_policy(self) -> OutboundPolicy:
        return OutboundPolicy.parse(self.outbound_allow)

    @cached_property
    def station_deadline(self) -> float:
        """Seconds a station gets to answer an OCPP call made for an OCPI command."""
        return max(self.command_timeout - self.command_timeout_margin, self.command_timeout / 2)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
