"""Webhooks of eMSP commands, on fakes: set, then each change POSTed in order, signed, and
retried from where it stopped."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import timedelta

import httpx

from chargegate.delivery.webhooks import WebhookWorker, signature
from chargegate.domain.clock import utcnow
from chargegate.service.emsp.webhooks import WebhookSubscriptions

from .fakes_emsp import DRIVER, OPERATOR, FakeEmsp, FakeWebhookStore


@dataclass(frozen=True)
class Key:
    id: int


DRIVER_KEY = Key(7)
OPERATOR_KEY = Key(8)
URL = "https://app.example.com/hook"


@dataclass
class World:
    """The eMSP on fakes, its webhooks, and an API client's endpoint answering `answers`."""

    emsp: FakeEmsp = field(default_factory=FakeEmsp)
    received: list[httpx.Request] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        assert (DRIVER.key_id, OPERATOR.key_id) == (DRIVER_KEY.id, OPERATOR_KEY.id)
        self.emsp.tables.key_scopes.update(
            {DRIVER_KEY.id: DRIVER.scopes, OPERATOR_KEY.id: OPERATOR.scopes}
        )
        store = FakeWebhookStore(self.emsp.tables)
        self.hooks = WebhookSubscriptions(store, self.emsp.events)
        client = httpx.AsyncClient(transport=httpx.MockTransport(self._receive))
        self.worker = WebhookWorker(self.emsp.settings, store, client, self.emsp.events)

    def _receive(self, request: httpx.Request) -> httpx.Response:
        self.received.append(request)
        return httpx.Response(self.answers.pop(0) if self.answers else 200)

    def kinds(self) -> list[str]:
        return [json.loads(r.content)["event"] for r in self.received]


async def test_a_webhook_gets_its_keys_changes_from_when_it_was_set_in_order() -> None:
    world = World()
    emsp = world.emsp
    peer = emsp.add_peer()
    await emsp.start_session(peer)  # before the webhook: not sent
    secret = (await world.hooks.put(DRIVER_KEY, URL))["secret"]
    view, _ = await emsp.start_session(peer)
    await emsp.start_session(peer, requester=OPERATOR)  # another key's command: not sent
    await world.worker.run_once()
    assert world.kinds() == ["REQUESTED", "RESPONDED"]
    assert {json.loads(r.content)["command"]["id"] for r in world.received} == {view["id"]}
    first = world.received[0]
    assert first.headers["X-Chargegate-Signature"] == signature(secret, first.content)
    state = await world.hooks.get(DRIVER_KEY)
    assert state is not None and state["failed_attempts"] == 0
    last = int(world.received[-1].headers["X-Chargegate-Event-Id"])
    assert state["delivered_up_to_event"] == last


async def test_a_failed_post_is_retried_from_the_event_that_failed() -> None:
    world = World(answers=[200, 503])
    await world.hooks.put(OPERATOR_KEY, URL)
    await world.emsp.start_session(world.emsp.add_peer())
    await world.worker.run_once()
    state = await world.hooks.get(OPERATOR_KEY)
    assert state is not None and state["failed_attempts"] == 1
    assert state["last_error"].startswith("HTTP 503")
    delivered = int(world.received[0].headers["X-Chargegate-Event-Id"])
    assert state["delivered_up_to_event"] == delivered
    # Not due again before its backoff ends.
    await world.worker.run_once()
    assert world.kinds() == ["REQUESTED", "RESPONDED"]
    assert await world.hooks.delete(OPERATOR_KEY)
    assert await world.hooks.get(OPERATOR_KEY) is None
    assert not await world.hooks.delete(OPERATOR_KEY)


async def test_a_webhook_failing_past_its_horizon_is_a_dead_letter_until_resumed() -> None:
    world = World(answers=[503, 503])
    await world.hooks.put(OPERATOR_KEY, URL)
    await world.emsp.start_session(world.emsp.add_peer())
    await world.worker.run_once()
    tables = world.emsp.tables.webhooks
    hook = tables[OPERATOR_KEY.id]
    assert hook.failing_since is not None and hook.dead_at is None
    # The same event has been failing for longer than the horizon when it fails again.
    horizon = timedelta(seconds=world.emsp.settings.webhook_horizon)
    tables[OPERATOR_KEY.id] = dataclasses.replace(
        hook, failing_since=hook.failing_since - horizon, next_attempt_at=utcnow()
    )
    await world.worker.run_once()
    state = await world.hooks.get(OPERATOR_KEY)
    assert state is not None and state["dead_since"] is not None
    assert state["last_error"].startswith("HTTP 503")
    # Dead: not tried again, whatever its backoff says.
    tables[OPERATOR_KEY.id] = dataclasses.replace(tables[OPERATOR_KEY.id], next_attempt_at=utcnow())
    await world.worker.run_once()
    assert len(world.received) == 2
    # Resumed by its owner: from the event it stopped at, in order.
    assert await world.hooks.resume(OPERATOR_KEY)
    await world.worker.run_once()
    assert world.kinds() == ["REQUESTED", "REQUESTED", "REQUESTED", "RESPONDED"]
    state = await world.hooks.get(OPERATOR_KEY)
    assert state is not None and state["dead_since"] is None and state["failed_attempts"] == 0
    assert not await world.hooks.resume(OPERATOR_KEY)  # not dead any more
