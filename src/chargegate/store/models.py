"""Tables. One row per thing the field names; JSON columns keep wire objects we must echo."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .secret_column import Secret

# BigInteger ids autoincrement on PostgreSQL; SQLite only autoincrements INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
    }


def table_of(model: type[Base]) -> Table:
    """A mapped class's Table, for Core statements (typed: `__table__` is a FromClause)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


class Party(Base):
    """A peer registered with us (OCPI credentials)."""

    __tablename__ = "parties"
    __table_args__ = (UniqueConstraint("country_code", "party_id", "role"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    role: Mapped[str] = mapped_column(String(8))
    country_code: Mapped[str] = mapped_column(String(2))
    party_id: Mapped[str] = mapped_column(String(3))
    name: Mapped[str | None] = mapped_column(String(100))
    profile: Mapped[str | None] = mapped_column(String(20))
    # sha256 of the tokens we issued; the tokens themselves are never stored.
    token_a_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    token_c_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The peer's token B, which we present when we call the peer: sealed at rest.
    token_b: Mapped[str | None] = mapped_column(Secret)
    versions_url: Mapped[str | None] = mapped_column(String(255))
    ocpi_version: Mapped[str | None] = mapped_column(String(8))
    endpoints: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    business_details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="PENDING")
    created_at: Mapped[datetime]
    registered_at: Mapped[datetime | None]


class Station(Base):
    __tablename__ = "stations"
    __table_args__ = (Index("uq_stations_location_id", "location_id", unique=True),)

    id: Mapped[str] = mapped_column(String(48), primary_key=True)
    # The OCPI Location id when the operator mapped it (GIREVE and hubs expect their own ids);
    # unmapped, the station is its own Location with the station id.
    location_id: Mapped[str | None] = mapped_column(String(36))
    ocpp_version: Mapped[str] = mapped_column(String(8))
    vendor: Mapped[str | None] = mapped_column(String(50))
    model: Mapped[str | None] = mapped_column(String(50))
    serial_number: Mapped[str | None] = mapped_column(String(50))
    firmware_version: Mapped[str | None] = mapped_column(String(50))
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    last_boot: Mapped[datetime | None]
    # Admission (docs/security.md#station-admission): an operator registered it, may disable
    # it, and may give it an HTTP Basic password (a salted hash, never the password).
    registered: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # Only a published station is an OCPI Location; `site` is its Location data (address,
    # coordinates, time zone…) as the operator set it (docs/security.md#publishing).
    published: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    site: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Connector(Base):
    """An OCPP connector; under OCPP 1.6 it is one OCPI EVSE."""

    __tablename__ = "connectors"

    station_id: Mapped[str] = mapped_column(
        ForeignKey("stations.id", ondelete="CASCADE"), primary_key=True
    )
    connector_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    # The OCPI EVSE uid when mapped; otherwise `{station_id}-{connector_id}`.
    evse_uid: Mapped[str | None] = mapped_column(String(36))
    ocpp_status: Mapped[str | None] = mapped_column(String(20))
    error_code: Mapped[str | None] = mapped_column(String(50))
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime]
    # What the operator said about the plug (standard, format, power type, voltage, amperage,
    # power, physical reference) for its OCPI Connector; None until said.
    spec: Mapped[dict[str, Any] | None] = mapped_column(JSON)


# What the pending-commands index holds. The sweeper's query names it with the same literal:
# neither engine matches a partial index to a bound parameter.
PENDING_STATE = "'PENDING'"
PENDING_ONLY = f"state = {PENDING_STATE}"


class Command(Base):
    """An OCPI command we accepted, from arrival to its one outcome."""

    __tablename__ = "commands"
    # Only pending commands, by deadline: what the sweeper looks for. Resolved ones, nearly
    # every row, leave it, so it stays a few pages however long the table grows, and the
    # resolving UPDATE (`id = ? AND state = ?`, bound) cannot mistake it for a way to the
    # primary key (docs/performance.md#pending-deadline-index).
    __table_args__ = (
        Index(
            "ix_commands_pending_deadline",
            "deadline",
            sqlite_where=text(PENDING_ONLY),
            postgresql_where=text(PENDING_ONLY),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    ocpi_version: Mapped[str] = mapped_column(String(8))
    type: Mapped[str] = mapped_column(String(24))
    station_id: Mapped[str | None] = mapped_column(String(48), index=True)
    connector_id: Mapped[int | None] = mapped_column(Integer)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    response_url: Mapped[str] = mapped_column(String(255))
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    authorization_reference: Mapped[str | None] = mapped_column(String(64))
    token_uid: Mapped[str | None] = mapped_column(String(36))
    # OCPP 2.0.1 echoes it in TransactionEvent: how the transaction finds its command.
    remote_start_id: Mapped[int | None] = mapped_column(Integer, index=True)
    state: Mapped[str] = mapped_column(String(16))
    result: Mapped[str | None] = mapped_column(String(24))
    message: Mapped[str | None] = mapped_column(Text)
    station_status: Mapped[str | None] = mapped_column(String(40))
    deadline: Mapped[datetime]
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]


class Reservation(Base):
    """The eMSP's reservation_id mapped to the integer the station knows (never forwarded)."""

    __tablename__ = "reservations"
    __table_args__ = (
        UniqueConstraint("party_id", "location_id", "reservation_id"),
        UniqueConstraint("station_id", "ocpp_reservation_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    location_id: Mapped[str] = mapped_column(String(48))
    reservation_id: Mapped[str] = mapped_column(String(36))
    station_id: Mapped[str] = mapped_column(String(48))
    connector_id: Mapped[int] = mapped_column(Integer)
    ocpp_reservation_id: Mapped[int] = mapped_column(Integer)
    expiry_date: Mapped[datetime]
    command_id: Mapped[str | None] = mapped_column(String(36))
    response_url: Mapped[str | None] = mapped_column(String(255))
    # 2.2.1: a successful reservation is a Session (status RESERVATION) until the charge starts.
    session_pk: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="REQUESTED")
    created_at: Mapped[datetime]


class ChargingSession(Base):
    """An OCPP transaction as an OCPI Session."""

    __tablename__ = "sessions"
    __table_args__ = (UniqueConstraint("station_id", "transaction_id"),)

    # Doubles as the OCPP 1.6 transactionId, which the CSMS must allocate as an integer.
    pk: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    station_id: Mapped[str] = mapped_column(String(48))
    connector_id: Mapped[int] = mapped_column(Integer)
    transaction_id: Mapped[str | None] = mapped_column(String(36))
    party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"))
    command_id: Mapped[str | None] = mapped_column(String(36))
    id_tag: Mapped[str] = mapped_column(String(36))
    token: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    auth_method: Mapped[str] = mapped_column(String(16))
    authorization_reference: Mapped[str | None] = mapped_column(String(64))
    meter_start: Mapped[int] = mapped_column(BigInteger, default=0)
    meter_last: Mapped[int] = mapped_column(BigInteger, default=0)
    kwh: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[str] = mapped_column(String(16))
    stop_reason: Mapped[str | None] = mapped_column(String(32))
    start_date_time: Mapped[datetime]
    end_date_time: Mapped[datetime | None]
    last_updated: Mapped[datetime]


class Outbox(Base):
    """A request we owe a peer. Written in the transaction that decided it; never lost."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "delivered_at", "next_attempt_at"),
        # The operator's dead letters (docs/guarantees.md#dead-letters).
        Index("ix_outbox_gave_up", "gave_up_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(24))  # COMMAND_RESULT | SESSION
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    method: Mapped[str] = mapped_column(String(8))
    url: Mapped[str] = mapped_column(String(512))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    ocpi_version: Mapped[str] = mapped_column(String(8))
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    command_id: Mapped[str | None] = mapped_column(String(36), index=True)
    # Store-and-forward items of one peer go out in FIFO order; results do not wait on each other.
    fifo: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Attempts the peer refused for good (4xx, OCPI 2xxx): past a bound, a dead letter.
    refusals: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    # Set: a dead letter (refused for good, or past its horizon), no longer tried.
    gave_up_at: Mapped[datetime | None]
    # Set: the operator dropped the dead letter; it stays for the record.
    dropped_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class OcppMessage(Base):
    """The communication log: every OCPP-J frame in or out."""

    __tablename__ = "ocpp_messages"
    __table_args__ = (
        Index("ix_ocpp_messages_station_time", "station_id", "created_at"),
        Index("ix_ocpp_messages_unique_id", "unique_id"),
        # Retention deletes by age; the operator's log lists by time across stations.
        Index("ix_ocpp_messages_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    station_id: Mapped[str] = mapped_column(String(48))
    direction: Mapped[str] = mapped_column(String(3))  # IN (station → us) | OUT
    message_type: Mapped[str] = mapped_column(String(12))  # CALL | CALLRESULT | CALLERROR
    action: Mapped[str | None] = mapped_column(String(50))
    unique_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[datetime]


class OperatorKey(Base):
    """An API key of the operator REST API; only its hash is stored."""

    __tablename__ = "operator_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(200))  # space-separated
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class RemoteRequest(Base):
    """One operator remote command, with the station's answer and the OCPP messages it caused."""

    __tablename__ = "remote_requests"
    __table_args__ = (Index("ix_remote_requests_kind_status", "kind", "status"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    station_id: Mapped[str] = mapped_column(String(48), index=True)
    connector_id: Mapped[int | None] = mapped_column(Integer)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(24))
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    message: Mapped[str | None] = mapped_column(Text)
    ocpp_message_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    operator_key_id: Mapped[int | None] = mapped_column(ForeignKey("operator_keys.id"))
    id_tag: Mapped[str | None] = mapped_column(String(36))
    session_id: Mapped[str | None] = mapped_column(String(36))
    valid_until: Mapped[datetime | None]
    stop_minutes: Mapped[float | None] = mapped_column(Float)
    stop_at: Mapped[datetime | None]
    stop_request_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class StationConfiguration(Base):
    """Configuration keys as the station last reported them (GetConfiguration)."""

    __tablename__ = "station_configuration"

    station_id: Mapped[str] = mapped_column(
        ForeignKey("stations.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str | None] = mapped_column(String(2500))
    readonly: Mapped[bool] = mapped_column(Boolean, default=False)
    fetched_at: Mapped[datetime]


class Cdr(Base):
    """The charge detail record of a completed session: one per session, ever."""

    __tablename__ = "cdrs"

    id: Mapped[str] = mapped_column(String(39), primary_key=True)
    session_pk: Mapped[int] = mapped_column(ForeignKey("sessions.pk"), unique=True)
    party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"), index=True)
    created_at: Mapped[datetime]


# ---- eMSP side: the CPOs (or hubs) we connected to, and the commands we send them ----------


class EmspPeer(Base):
    """A CPO or hub we registered with as an eMSP (we started the credentials handshake)."""

    __tablename__ = "emsp_peers"
    __table_args__ = (UniqueConstraint("country_code", "party_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # Known once the handshake is through: the identity in the peer's credentials.
    country_code: Mapped[str | None] = mapped_column(String(2))
    party_id: Mapped[str | None] = mapped_column(String(3))
    role: Mapped[str | None] = mapped_column(String(8))
    roles: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    name: Mapped[str | None] = mapped_column(String(100))
    profile: Mapped[str | None] = mapped_column(String(20))
    # sha256 of token B, which we issued and the peer presents; never the token itself.
    token_b_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The peer's token C, which we present when we call it: sealed at rest.
    token_c: Mapped[str | None] = mapped_column(Secret)
    # 2.2.1 peers that refuse Base64 tokens (spec NOTE: many do); found during the handshake.
    plain_token: Mapped[bool] = mapped_column(Boolean, default=False)
    versions_url: Mapped[str] = mapped_column(String(255))
    ocpi_version: Mapped[str | None] = mapped_column(String(8))
    endpoints: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    business_details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))  # CONNECTING | CONNECTED | UNREGISTERED
    created_at: Mapped[datetime]
    connected_at: Mapped[datetime | None]


class EmspCommand(Base):
    """A command we sent to a peer, from the API request to its outcome."""

    __tablename__ = "emsp_commands"
    __table_args__ = (
        UniqueConstraint("api_key_id", "idempotency_key"),
        Index("ix_emsp_commands_state_expires", "state", "expires_at"),
        Index("ix_emsp_commands_peer_reference", "peer_id", "authorization_reference"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    peer_id: Mapped[int] = mapped_column(ForeignKey("emsp_peers.id"))
    ocpi_version: Mapped[str] = mapped_column(String(8))
    type: Mapped[str] = mapped_column(String(24))
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("operator_keys.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)  # as the API client asked
    body: Mapped[dict[str, Any]] = mapped_column(JSON)  # as sent on the wire
    # The unguessable last segment of the response_url; it binds a result POST to this command.
    response_ref: Mapped[str] = mapped_column(String(64), unique=True)
    authorization_reference: Mapped[str | None] = mapped_column(String(36))
    token_uid: Mapped[str | None] = mapped_column(String(36))
    contract_id: Mapped[str | None] = mapped_column(String(36))
    location_id: Mapped[str | None] = mapped_column(String(39))
    state: Mapped[str] = mapped_column(String(16))
    # Optimistic concurrency: every transition is `UPDATE … WHERE revision = <read>`.
    revision: Mapped[int] = mapped_column(Integer, default=0)
    response_status_code: Mapped[int | None] = mapped_column(Integer)
    response_result: Mapped[str | None] = mapped_column(String(24))
    response_message: Mapped[str | None] = mapped_column(Text)
    response_timeout: Mapped[int | None] = mapped_column(Integer)
    result: Mapped[str | None] = mapped_column(String(24))
    result_message: Mapped[str | None] = mapped_column(Text)
    failure: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    responded_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    result_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class EmspCommandEvent(Base):
    """One change of an eMSP command, as the SSE stream and webhooks show it, in id order."""

    __tablename__ = "emsp_command_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    command_id: Mapped[str] = mapped_column(ForeignKey("emsp_commands.id"), index=True)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("operator_keys.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]


class EmspSession(Base):
    """A Session a peer pushed to us (PUT/PATCH), linked to the command that started it."""

    __tablename__ = "emsp_sessions"
    __table_args__ = (UniqueConstraint("peer_id", "country_code", "party_id", "session_id"),)

    pk: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    peer_id: Mapped[int] = mapped_column(ForeignKey("emsp_peers.id"))
    country_code: Mapped[str] = mapped_column(String(2))
    party_id: Mapped[str] = mapped_column(String(3))
    session_id: Mapped[str] = mapped_column(String(36))
    command_id: Mapped[str | None] = mapped_column(ForeignKey("emsp_commands.id"), index=True)
    authorization_reference: Mapped[str | None] = mapped_column(String(36))
    status: Mapped[str | None] = mapped_column(String(16))
    object: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class EmspCdr(Base):
    """A CDR a peer POSTed to us, linked to the command whose session it bills."""

    __tablename__ = "emsp_cdrs"
    __table_args__ = (UniqueConstraint("peer_id", "country_code", "party_id", "cdr_id"),)

    pk: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    peer_id: Mapped[int] = mapped_column(ForeignKey("emsp_peers.id"))
    country_code: Mapped[str] = mapped_column(String(2))
    party_id: Mapped[str] = mapped_column(String(3))
    cdr_id: Mapped[str] = mapped_column(String(39))
    session_id: Mapped[str | None] = mapped_column(String(36))
    command_id: Mapped[str | None] = mapped_column(ForeignKey("emsp_commands.id"), index=True)
    authorization_reference: Mapped[str | None] = mapped_column(String(36))
    object: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime]


class EmspWebhook(Base):
    """Where an API key wants its command changes POSTed; `cursor` is the last event delivered."""

    __tablename__ = "emsp_webhooks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("operator_keys.id"), unique=True)
    url: Mapped[str] = mapped_column(String(512))
    secret: Mapped[str] = mapped_column(Secret)  # signs the webhook's POSTs: sealed at rest
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # When the event after `cursor` first failed; past the webhook horizon, `dead_at` is set
    # and nothing is sent until the owner resumes it.
    failing_since: Mapped[datetime | None]
    dead_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
