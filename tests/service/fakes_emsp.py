"""In-memory fakes of the eMSP side's ports (service/emsp/store_ports.py, ports.py), and the
eMSP use cases wired on them: service tests with no database, no server and no peer."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chargegate.domain import commands as dc
from chargegate.domain.clock import utcnow
from chargegate.domain.emsp_commands import CpoAnswer, EventKind
from chargegate.service.emsp.commands import EmspCommands
from chargegate.service.emsp.events import EmspEvents
from chargegate.service.emsp.peers import EmspPeers
from chargegate.service.emsp.ports import BodyError, Registration, Target
from chargegate.service.emsp.receipts import EmspReceipts
from chargegate.service.emsp.records import (
    CommandEvent,
    Connected,
    NewCredentials,
    Peer,
    PushedCdr,
    PushedSession,
    SentCommand,
    Webhook,
)
from chargegate.service.emsp.store_ports import DuplicateCommand
from chargegate.service.emsp.views import Requester
from chargegate.settings import Settings

# ---- the database ----------------------------------------------------------------------------


@dataclass
class Tables:
    """What the fake database holds; records are frozen, so a shallow copy is a snapshot."""

    peers: dict[int, Peer] = field(default_factory=dict)
    commands: dict[str, SentCommand] = field(default_factory=dict)
    events: list[CommandEvent] = field(default_factory=list)
    sessions: list[PushedSession] = field(default_factory=list)
    cdrs: list[PushedCdr] = field(default_factory=list)
    webhooks: dict[int, Webhook] = field(default_factory=dict)
    key_scopes: dict[int, frozenset[str]] = field(default_factory=dict)
    next_id: int = 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def snapshot(self) -> Tables:
        names = [f.name for f in dataclasses.fields(self)]
        return Tables(**{name: copy.copy(getattr(self, name)) for name in names})


class FakeTransaction:
    """CommandWrites over the tables; the store undoes it all if the transaction fails."""

    def __init__(self, store: FakeCommandStore) -> None:
        self._store = store
        self._t = store.tables

    async def command(self, command_id: str) -> SentCommand | None:
        return self._t.commands.get(command_id)

    async def peer(self, peer_id: int) -> Peer | None:
        return self._t.peers.get(peer_id)

    async def by_idempotency_key(self, api_key_id: int | None, key: str) -> SentCommand | None:
        for c in self._t.commands.values():
            if c.api_key_id == api_key_id and c.idempotency_key == key:
                return c
        return None

    async def command_for_result(
        self, response_ref: str, peer_id: int, command_type: str, version: str
    ) -> str | None:
        for c in self._t.commands.values():
            if (c.response_ref, c.peer_id, c.type, c.ocpi_version) == (
                response_ref,
                peer_id,
                command_type,
                version,
            ):
                return c.id
        return None

    async def due_commands(self, now: datetime, stale_before: datetime) -> list[str]:
        return [
            c.id
            for c in self._t.commands.values()
            if (c.state == "RESPONDED" and c.expires_at is not None and c.expires_at <= now)
            or (c.state == "REQUESTED" and c.created_at <= stale_before)
        ]

    async def commands(
        self,
        *,
        api_key_id: int | None,
        peer_id: int | None,
        state: str | None,
        limit: int,
        offset: int,
    ) -> list[SentCommand]:
        found = [
            c
            for c in self._t.commands.values()
            if (api_key_id is None or c.api_key_id == api_key_id)
            and (peer_id is None or c.peer_id == peer_id)
            and (state is None or c.state == state)
        ]
        found.sort(key=lambda c: c.created_at, reverse=True)
        return found[offset : offset + limit]

    async def latest_session_of(self, command_id: str) -> PushedSession | None:
        linked = [s for s in self._t.sessions if s.command_id == command_id]
        return max(linked, key=lambda s: s.updated_at) if linked else None

    async def latest_cdr_of(self, command_id: str) -> PushedCdr | None:
        linked = [c for c in self._t.cdrs if c.command_id == command_id]
        return linked[-1] if linked else None

    async def session(
        self, peer_id: int, party: tuple[str, str], session_id: str
    ) -> PushedSession | None:
        wanted = (peer_id, *party, session_id)
        for s in self._t.sessions:
            if (s.peer_id, s.country_code, s.party_id, s.session_id) == wanted:
                return s
        return None

    async def cdr_pk(self, peer_id: int, party: tuple[str, str], cdr_id: str) -> int | None:
        for c in self._t.cdrs:
            if (c.peer_id, c.country_code, c.party_id, c.cdr_id) == (peer_id, *party, cdr_id):
                return c.pk
        return None

    async def cdr(self, pk: int) -> PushedCdr | None:
        return next((c for c in self._t.cdrs if c.pk == pk), None)

    async def command_by_reference(self, peer_id: int, reference: str) -> str | None:
        found = [
            c
            for c in self._t.commands.values()
            if c.peer_id == peer_id
            and (c.authorization_reference or "").lower() == reference.lower()
        ]
        return max(found, key=lambda c: c.created_at).id if found else None

    async def unlinked_start_session(
        self,
        peer_id: int,
        *,
        since: datetime,
        token_field: str,
        token: str,
        location_id: str,
    ) -> str | None:
        linked = {s.command_id for s in self._t.sessions if s.command_id is not None}
        found = [
            c
            for c in self._t.commands.values()
            if c.peer_id == peer_id
            and c.type == "START_SESSION"
            and c.created_at >= since
            and (getattr(c, token_field) or "").lower() == token.lower()
            and (c.location_id or "").lower() == location_id.lower()
            and c.id not in linked
        ]
        return max(found, key=lambda c: c.created_at).id if found else None

    async def linked_sessions(self, peer_id: int, limit: int) -> list[PushedSession]:
        found = [s for s in self._t.sessions if s.peer_id == peer_id and s.command_id is not None]
        return list(reversed(found))[:limit]

    async def sessions_of(
        self, *, api_key_id: int | None, command_id: str | None, limit: int
    ) -> list[PushedSession]:
        found = [
            s
            for s in self._t.sessions
            if (command_id is None or s.command_id == command_id)
            and (api_key_id is None or self._owner(s.command_id) == api_key_id)
        ]
        return sorted(found, key=lambda s: s.updated_at, reverse=True)[:limit]

    async def cdrs_of(
        self, *, api_key_id: int | None, command_id: str | None, limit: int
    ) -> list[PushedCdr]:
        found = [
            c
            for c in self._t.cdrs
            if (command_id is None or c.command_id == command_id)
            and (api_key_id is None or self._owner(c.command_id) == api_key_id)
        ]
        return list(reversed(found))[:limit]

    def _owner(self, command_id: str | None) -> int | None:
        command = self._t.commands.get(command_id or "")
        return command.api_key_id if command is not None else None

    # ---- writes --------------------------------------------------------------------------

    async def add_command(self, command: SentCommand) -> None:
        if self._store.before_add is not None:
            self._store.committed_meanwhile(self._store.before_add)
        for c in self._t.commands.values():
            same_key = command.idempotency_key is not None and (
                c.api_key_id,
                c.idempotency_key,
            ) == (command.api_key_id, command.idempotency_key)
            if same_key or c.response_ref == command.response_ref:
                raise DuplicateCommand(c.id)
        self._t.commands[command.id] = command

    async def update_command(
        self, command_id: str, revision: int, values: dict[str, Any]
    ) -> SentCommand | None:
        if self._store.before_update:
            self._store.committed_meanwhile(self._store.before_update.pop(0))
        current = self._t.commands[command_id]
        if current.revision != revision:
            return None
        written = dataclasses.replace(current, **values)
        self._t.commands[command_id] = written
        return written

    def append_event(self, command: SentCommand, kind: EventKind, data: dict[str, Any]) -> None:
        event = CommandEvent(
            id=self._t.new_id(),
            command_id=command.id,
            api_key_id=command.api_key_id,
            kind=kind.value,
            data=data,
            created_at=utcnow(),
        )
        self._t.events.append(event)

    async def save_session(self, session: PushedSession) -> PushedSession:
        party = (session.country_code, session.party_id)
        stored = await self.session(session.peer_id, party, session.session_id)
        if stored is None:
            saved = dataclasses.replace(session, pk=self._t.new_id())
            self._t.sessions.append(saved)
        else:
            saved = dataclasses.replace(session, pk=stored.pk)
            self._t.sessions[self._t.sessions.index(stored)] = saved
        return saved

    async def add_cdr(self, cdr: PushedCdr) -> int:
        pk = self._t.new_id()
        self._t.cdrs.append(dataclasses.replace(cdr, pk=pk))
        return pk


# Changes the tables as another writer would, at a chosen point of a transaction.
Interleave = Callable[[Tables], None]


class FakeCommandStore:
    """CommandStore in memory, one writer at a time. A writing transaction that raises leaves
    the tables as they were; `before_add` and `before_update` change them as another writer's
    commit would, just before the transaction inserts or updates a command."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.before_add: Interleave | None = None
        self.before_update: list[Interleave] = []
        self.commits = 0
        self._before: Tables | None = None  # the tables as the open transaction found them

    def committed_meanwhile(self, change: Interleave) -> None:
        """Another writer's committed change: it stays if the open transaction rolls back."""
        change(self.tables)
        if self._before is not None:
            change(self._before)

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[FakeTransaction]:
        yield FakeTransaction(self)

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[FakeTransaction]:
        assert self._before is None, "one writer at a time"
        self._before = before = self.tables.snapshot()
        try:
            yield FakeTransaction(self)
        except BaseException:
            for f in dataclasses.fields(before):
                setattr(self.tables, f.name, getattr(before, f.name))
            raise
        finally:
            self._before = None
        self.commits += 1

    async def events_after(
        self, cursor: int, *, api_key_id: int | None, command_id: str | None, limit: int
    ) -> list[CommandEvent]:
        found = [
            e
            for e in self.tables.events
            if e.id > cursor
            and (api_key_id is None or e.api_key_id == api_key_id)
            and (command_id is None or e.command_id == command_id)
        ]
        return found[:limit]

    async def last_event_id(self) -> int:
        return self.tables.events[-1].id if self.tables.events else 0


class FakePeerStore:
    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    async def add_pending(
        self,
        *,
        token_b_hash: str,
        versions_url: str,
        profile: str | None,
        name: str | None,
        now: datetime,
    ) -> int:
        peer = Peer(
            id=self.tables.new_id(),
            state="CONNECTING",
            versions_url=versions_url,
            created_at=now,
            token_b_hash=token_b_hash,
            profile=profile,
            name=name,
        )
        self.tables.peers[peer.id] = peer
        return peer.id

    async def delete(self, peer_id: int) -> None:
        self.tables.peers.pop(peer_id, None)

    async def connected(self, pending_id: int, connected: Connected) -> Peer:
        pending = self.tables.peers[pending_id]
        peer = pending
        known = await self.by_party(connected.country_code, connected.party_id)
        if known is not None and known.id != pending_id:
            del self.tables.peers[pending_id]
            peer = dataclasses.replace(
                known,
                name=pending.name or known.name,
                profile=pending.profile or known.profile,
                versions_url=pending.versions_url,
            )
        values = {f.name: getattr(connected, f.name) for f in dataclasses.fields(connected)}
        peer = dataclasses.replace(peer, state="CONNECTED", **values)
        self.tables.peers[peer.id] = peer
        return peer

    async def new_credentials(self, peer_id: int, credentials: NewCredentials) -> None:
        values = {f.name: getattr(credentials, f.name) for f in dataclasses.fields(credentials)}
        self.tables.peers[peer_id] = dataclasses.replace(self.tables.peers[peer_id], **values)

    async def unregister(self, peer_id: int) -> None:
        peer = self.tables.peers[peer_id]
        self.tables.peers[peer_id] = dataclasses.replace(
            peer, token_b_hash=None, token_c=None, state="UNREGISTERED"
        )

    async def all(self) -> list[Peer]:
        return sorted(self.tables.peers.values(), key=lambda p: p.id)

    async def by_token_hash(self, hashes: list[str]) -> Peer | None:
        return next((p for p in self.tables.peers.values() if p.token_b_hash in hashes), None)

    async def get(self, peer_id: int) -> Peer | None:
        return self.tables.peers.get(peer_id)

    async def by_party(self, country_code: str, party_id: str) -> Peer | None:
        return next(
            (
                p
                for p in self.tables.peers.values()
                if (p.country_code, p.party_id) == (country_code, party_id)
            ),
            None,
        )


class FakeWebhookStore:
    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    async def put(self, api_key_id: int, url: str, secret: str, cursor: int, now: datetime) -> None:
        known = await self.get(api_key_id)
        self.tables.webhooks[api_key_id] = Webhook(
            id=known.id if known else self.tables.new_id(),
            api_key_id=api_key_id,
            url=url,
            secret=secret,
            cursor=cursor,
            attempts=0,
            next_attempt_at=now,
            created_at=known.created_at if known else now,
        )

    async def get(self, api_key_id: int) -> Webhook | None:
        return self.tables.webhooks.get(api_key_id)

    async def delete(self, api_key_id: int) -> bool:
        return self.tables.webhooks.pop(api_key_id, None) is not None

    async def due(self, now: datetime) -> list[Webhook]:
        return [
            w
            for w in self.tables.webhooks.values()
            if w.next_attempt_at <= now
            and w.dead_at is None
            and (w.lease_until is None or w.lease_until < now)
        ]

    async def resume(self, api_key_id: int, now: datetime) -> bool:
        hook = self.tables.webhooks.get(api_key_id)
        if hook is None or hook.dead_at is None:
            return False
        self.tables.webhooks[api_key_id] = dataclasses.replace(
            hook, dead_at=None, failing_since=None, attempts=0, next_attempt_at=now
        )
        return True

    async def claim(self, webhook_id: int, now: datetime, until: datetime) -> Webhook | None:
        for key, w in self.tables.webhooks.items():
            if w.id == webhook_id and (w.lease_until is None or w.lease_until < now):
                self.tables.webhooks[key] = dataclasses.replace(w, lease_until=until)
                return self.tables.webhooks[key]
        return None

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
        current = self.tables.webhooks.get(webhook.api_key_id)
        if current is None or current.id != webhook.id or current.secret != webhook.secret:
            return
        self.tables.webhooks[webhook.api_key_id] = dataclasses.replace(
            current,
            cursor=cursor,
            lease_until=None,
            attempts=attempts,
            last_error=last_error,
            next_attempt_at=next_attempt_at,
            failing_since=failing_since,
            dead_at=dead_at,
        )

    async def key_scopes(self, api_key_id: int) -> frozenset[str]:
        return self.tables.key_scopes.get(api_key_id, frozenset())


# ---- the CPO ---------------------------------------------------------------------------------


@dataclass
class Sent:
    target: Target
    command: str
    body: dict[str, Any]
    command_id: str


class FakeChannel:
    """A CPO that answers every command with `answer`; `during_send` runs while the command is
    on its way (a result that beats the answer, say)."""

    def __init__(self) -> None:
        self.answer = CpoAnswer(status_code=1000, result="ACCEPTED", timeout=30)
        self.sent: list[Sent] = []
        self.refuse_body: str | None = None
        self.during_send: Callable[[Sent], Awaitable[None]] | None = None

    def body(
        self, version: str, request: dc.CommandRequest, response_url: str, **context: Any
    ) -> dict[str, Any]:
        if self.refuse_body is not None:
            raise BodyError(self.refuse_body)
        reference = getattr(request, "authorization_reference", None)
        body: dict[str, Any] = {"response_url": response_url, "version": version}
        if reference is not None:
            body["authorization_reference"] = reference
        return body

    async def send(
        self, target: Target, command: str, body: dict[str, Any], correlation_id: str
    ) -> CpoAnswer:
        sent = Sent(target, command, body, correlation_id)
        self.sent.append(sent)
        if self.during_send is not None:
            await self.during_send(sent)
        return self.answer


class NoHandshake:
    """The command use cases never run a handshake."""

    async def register(
        self, versions_url: str, token_a: str, token_b: str, *, version: str | None
    ) -> Registration:
        raise AssertionError("no handshake in these tests")

    async def endpoints(
        self, versions_url: str, token: str, version: str
    ) -> tuple[dict[str, str], bool]:
        raise AssertionError("no handshake in these tests")


# ---- the eMSP role on fakes ------------------------------------------------------------------

DRIVER = Requester(key_id=7, scopes=frozenset({"driver"}))
OPERATOR = Requester(key_id=8, scopes=frozenset({"operator"}))


class FakeEmsp:
    """The eMSP command use cases over fake stores and a fake CPO."""

    def __init__(self, **settings: Any) -> None:
        self.settings = Settings(
            public_url="https://emsp.example.com",
            emsp_country_code="NL",
            emsp_party_id="EMS",
            **settings,
        )
        self.tables = Tables()
        self.store = FakeCommandStore(self.tables)
        self.channel = FakeChannel()
        self.events = EmspEvents(self.store)
        self.peers = EmspPeers(self.settings, FakePeerStore(self.tables), NoHandshake())
        self.commands = EmspCommands(self.settings, self.events, self.peers, self.channel)
        self.receipts = EmspReceipts(self.settings, self.events, self.commands)

    def add_peer(
        self,
        *,
        version: str = "2.2.1",
        profile: str | None = None,
        state: str = "CONNECTED",
        endpoints: dict[str, Any] | None = None,
        party: tuple[str, str] = ("FR", "CPO"),
    ) -> Peer:
        peer = Peer(
            id=self.tables.new_id(),
            state=state,
            versions_url="https://cpo.example.com/versions",
            created_at=utcnow(),
            country_code=party[0],
            party_id=party[1],
            role="CPO",
            profile=profile,
            token_c="token-c",
            ocpi_version=version,
            endpoints={"commands": "https://cpo.example.com/commands"}
            if endpoints is None
            else endpoints,
        )
        self.tables.peers[peer.id] = peer
        return peer

    def command(self, command_id: str) -> SentCommand:
        return self.tables.commands[command_id]

    def kinds(self, command_id: str) -> list[str]:
        """The events told about the command, in order."""
        return [e.kind for e in self.tables.events if e.command_id == command_id]

    def age(self, command_id: str, by: timedelta) -> None:
        """Move the command's times into the past, as if `by` had passed."""
        c = self.tables.commands[command_id]
        self.tables.commands[command_id] = dataclasses.replace(
            c,
            created_at=c.created_at - by,
            expires_at=c.expires_at - by if c.expires_at else None,
        )

    async def start_session(
        self,
        peer: Peer,
        *,
        requester: Requester = DRIVER,
        evse_uid: str | None = "EVSE-1",
        idempotency_key: str | None = None,
        location_id: str = "LOC-1",
    ) -> tuple[dict[str, Any], bool]:
        request = dc.StartSession(
            location_id=location_id,
            token=dc.Token(uid="TOKEN-1", type="APP_USER", contract_id="NL-EMS-C1"),
            evse_uid=evse_uid,
        )
        params = {"location_id": location_id, "evse_uid": evse_uid, "token": {"uid": "TOKEN-1"}}
        return await self.commands.submit(
            requester, str(peer.id), request, params, idempotency_key=idempotency_key
        )

    async def post_result(
        self, command_id: str, result: str, message: str | None = None
    ) -> str | None:
        """The CPO POSTs a result to the command's response_url."""
        c = self.tables.commands[command_id]
        peer = self.tables.peers[c.peer_id]
        return await self.commands.record_result(
            peer, c.ocpi_version, c.type, c.response_ref, result, message
        )
