"""What the eMSP use cases read and write, as plain values: the store (store/emsp_*_sql.py)
turns its rows into these, and the service tests' fakes keep them in memory. Field names are
the columns' (store/models.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Peer:
    """A CPO or hub we registered with as an eMSP (we started the credentials handshake)."""

    id: int
    state: str  # CONNECTING | CONNECTED | UNREGISTERED
    versions_url: str
    created_at: datetime
    country_code: str | None = None
    party_id: str | None = None
    role: str | None = None
    roles: list[dict[str, Any]] = field(default_factory=list)
    name: str | None = None
    profile: str | None = None
    token_b_hash: str | None = None  # sha256 of the token B we issued; never the token
    token_c: str | None = None  # the peer's token, which we present when we call it
    plain_token: bool = False
    ocpi_version: str | None = None
    endpoints: dict[str, Any] = field(default_factory=dict)
    business_details: dict[str, Any] | None = None
    connected_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Connected:
    """What a completed handshake tells about a peer, to be kept on its row."""

    country_code: str
    party_id: str
    role: str
    roles: list[dict[str, Any]]
    business_details: dict[str, Any] | None
    token_b_hash: str
    token_c: str
    plain_token: bool
    ocpi_version: str
    endpoints: dict[str, str]
    connected_at: datetime


@dataclass(frozen=True, slots=True)
class NewCredentials:
    """What a peer's credentials PUT changes on its row."""

    token_c: str
    token_b_hash: str
    versions_url: str
    ocpi_version: str
    plain_token: bool
    endpoints: dict[str, str]
    business_details: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class SentCommand:
    """A command we sent to a peer, from the API request to its outcome."""

    id: str
    peer_id: int
    ocpi_version: str
    type: str
    api_key_id: int | None
    idempotency_key: str | None
    request_hash: str
    params: dict[str, Any]  # as the API client asked
    body: dict[str, Any]  # as sent on the wire
    response_ref: str  # the last segment of the response_url
    state: str
    revision: int  # every change is written `WHERE revision = <read>`
    created_at: datetime
    updated_at: datetime
    authorization_reference: str | None = None
    token_uid: str | None = None
    contract_id: str | None = None
    location_id: str | None = None
    response_status_code: int | None = None
    response_result: str | None = None
    response_message: str | None = None
    response_timeout: int | None = None
    result: str | None = None
    result_message: str | None = None
    failure: str | None = None
    responded_at: datetime | None = None
    expires_at: datetime | None = None
    result_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CommandEvent:
    """One change of a command, as the SSE stream and webhooks show it; ids grow in commit
    order."""

    id: int
    command_id: str
    api_key_id: int | None
    kind: str
    data: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PushedSession:
    """A Session a peer pushed to us, linked to the command that started it."""

    peer_id: int
    country_code: str
    party_id: str
    session_id: str
    object: dict[str, Any]
    received_at: datetime
    updated_at: datetime
    command_id: str | None = None
    authorization_reference: str | None = None
    status: str | None = None
    pk: int | None = None  # None until stored


@dataclass(frozen=True, slots=True)
class PushedCdr:
    """A CDR a peer POSTed to us, linked to the command whose session it bills."""

    peer_id: int
    country_code: str
    party_id: str
    cdr_id: str
    object: dict[str, Any]
    received_at: datetime
    session_id: str | None = None
    command_id: str | None = None
    authorization_reference: str | None = None
    pk: int | None = None  # None until stored


@dataclass(frozen=True, slots=True)
class Webhook:
    """Where an API key wants its command changes POSTed; `cursor` is the last event
    delivered."""

    id: int
    api_key_id: int
    url: str
    secret: str
    cursor: int
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    lease_until: datetime | None = None
    last_error: str | None = None
    failing_since: datetime | None = None  # the event after `cursor` first failed then
    dead_at: datetime | None = None  # past the horizon: set aside until resumed
