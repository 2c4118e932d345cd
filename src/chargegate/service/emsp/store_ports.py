"""What the eMSP use cases need from the database, as protocols that `store/` implements
(store/emsp_commands_sql.py, emsp_peers_sql.py, emsp_webhooks_sql.py) and the service tests
fake in memory."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from chargegate.domain.emsp_commands import EventKind

from .records import (
    CommandEvent,
    Connected,
    NewCredentials,
    Peer,
    PushedCdr,
    PushedSession,
    SentCommand,
    Webhook,
)


class DuplicateCommand(Exception):
    """A new command collides with a stored one: the same API key and Idempotency-Key (a
    request sent twice at once), or the same response reference."""


class CommandReads(Protocol):
    """Reads of commands and what is linked to them, inside one transaction."""

    async def command(self, command_id: str) -> SentCommand | None:
        """The command as stored now (not as an earlier read of this transaction saw it)."""
        ...

    async def peer(self, peer_id: int) -> Peer | None: ...

    async def by_idempotency_key(self, api_key_id: int | None, key: str) -> SentCommand | None: ...

    async def command_for_result(
        self, response_ref: str, peer_id: int, command_type: str, version: str
    ) -> str | None:
        """The id of the command we gave this peer this response_url for, if any."""
        ...

    async def due_commands(self, now: datetime, stale_before: datetime) -> list[str]:
        """Ids of commands ACCEPTED whose `expires_at` is past `now`, and of REQUESTED ones
        created before `stale_before`."""
        ...

    async def commands(
        self,
        *,
        api_key_id: int | None,
        peer_id: int | None,
        state: str | None,
        limit: int,
        offset: int,
    ) -> list[SentCommand]:
        """Newest first; each filter applies when not None."""
        ...

    async def latest_session_of(self, command_id: str) -> PushedSession | None: ...

    async def latest_cdr_of(self, command_id: str) -> PushedCdr | None: ...

    async def session(
        self, peer_id: int, party: tuple[str, str], session_id: str
    ) -> PushedSession | None: ...

    async def cdr_pk(self, peer_id: int, party: tuple[str, str], cdr_id: str) -> int | None: ...

    async def cdr(self, pk: int) -> PushedCdr | None: ...

    async def command_by_reference(self, peer_id: int, reference: str) -> str | None:
        """The newest command to this peer with this authorization reference, compared
        without regard to case (a CiString in 2.2.1)."""
        ...

    async def unlinked_start_session(
        self,
        peer_id: int,
        *,
        since: datetime,
        token_field: str,
        token: str,
        location_id: str,
    ) -> str | None:
        """The newest START_SESSION to this peer since `since` with this token (`token_field`
        is `token_uid` or `contract_id`) and location, compared without regard to case, that
        no Session is linked to yet."""
        ...

    async def linked_sessions(self, peer_id: int, limit: int) -> list[PushedSession]:
        """This peer's Sessions that are linked to a command, newest first."""
        ...

    async def sessions_of(
        self, *, api_key_id: int | None, command_id: str | None, limit: int
    ) -> list[PushedSession]:
        """Newest first; `api_key_id` keeps only Sessions of that key's commands."""
        ...

    async def cdrs_of(
        self, *, api_key_id: int | None, command_id: str | None, limit: int
    ) -> list[PushedCdr]:
        """Newest first; `api_key_id` keeps only CDRs of that key's commands."""
        ...


class CommandWrites(CommandReads, Protocol):
    """One transaction that may append events: all of it commits, or none of it."""

    async def add_command(self, command: SentCommand) -> None:
        """Raises DuplicateCommand when it collides with a stored command."""
        ...

    async def update_command(
        self, command_id: str, revision: int, values: dict[str, Any]
    ) -> SentCommand | None:
        """Write `values` (column names) if the command is still at `revision`; the command as
        written, or None when another writer changed it first."""
        ...

    def append_event(self, command: SentCommand, kind: EventKind, data: dict[str, Any]) -> None: ...

    async def save_session(self, session: PushedSession) -> PushedSession:
        """Insert the Session, or replace the stored one with the same peer, party and id."""
        ...

    async def add_cdr(self, cdr: PushedCdr) -> int:
        """Insert the CDR; returns its key."""
        ...


class CommandStore(Protocol):
    """Commands, their event log, and the Sessions and CDRs linked to them."""

    def reading(self) -> AbstractAsyncContextManager[CommandReads]: ...

    def writing(self) -> AbstractAsyncContextManager[CommandWrites]:
        """A transaction that may append events. Event ids must commit in order: a reader that
        moved its cursor past an id must never see a smaller one commit later (SQLite has one
        writer; on PostgreSQL each such transaction first locks the event table)."""
        ...

    async def events_after(
        self, cursor: int, *, api_key_id: int | None, command_id: str | None, limit: int
    ) -> list[CommandEvent]:
        """Events past `cursor`, oldest first; each filter applies when not None."""
        ...

    async def last_event_id(self) -> int: ...


class PeerStore(Protocol):
    async def add_pending(
        self,
        *,
        token_b_hash: str,
        versions_url: str,
        profile: str | None,
        name: str | None,
        now: datetime,
    ) -> int:
        """A CONNECTING peer for a handshake under way; returns its id."""
        ...

    async def delete(self, peer_id: int) -> None: ...

    async def connected(self, pending_id: int, connected: Connected) -> Peer:
        """Keep what the handshake learnt. If another row has the same identity (connecting
        again to a peer we know), that row is updated instead, taking the pending row's
        versions URL and its name and profile when given, and the pending row is deleted: the
        peer's commands, sessions and CDRs stay together."""
        ...

    async def new_credentials(self, peer_id: int, credentials: NewCredentials) -> None: ...

    async def unregister(self, peer_id: int) -> None:
        """Both tokens forgotten; the peer is UNREGISTERED."""
        ...

    async def all(self) -> list[Peer]:
        """Ordered by id."""
        ...

    async def by_token_hash(self, hashes: list[str]) -> Peer | None: ...

    async def get(self, peer_id: int) -> Peer | None: ...

    async def by_party(self, country_code: str, party_id: str) -> Peer | None: ...


class WebhookStore(Protocol):
    async def put(self, api_key_id: int, url: str, secret: str, cursor: int, now: datetime) -> None:
        """Set the key's webhook (one per key), due now, with no failures and no lease."""
        ...

    async def get(self, api_key_id: int) -> Webhook | None: ...

    async def delete(self, api_key_id: int) -> bool:
        """False when the key had none."""
        ...

    async def due(self, now: datetime) -> list[Webhook]:
        """Webhooks whose next attempt is due, not dead, and that no worker holds a lease on."""
        ...

    async def resume(self, api_key_id: int, now: datetime) -> bool:
        """A dead webhook due again from its cursor, its horizon anew; False if not dead."""
        ...

    async def claim(self, webhook_id: int, now: datetime, until: datetime) -> Webhook | None:
        """Take the webhook's lease until `until`, unless another worker holds it (None)."""
        ...

    async def delivered(
        self,
        webhook: Webhook,
        *,
        cursor: int,
        attempts: int,
        last_error: str | None,
        next_attempt_at: datetime,
        failing_since: datetime | None = None,
        dead_at: datetime | None = None,
    ) -> None:
        """Record a delivery round and release the lease, unless the webhook was set again
        meanwhile (a PUT makes a new secret and resets the cursor)."""
        ...

    async def key_scopes(self, api_key_id: int) -> frozenset[str]:
        """The API key's scopes; none for a key that is gone."""
        ...
