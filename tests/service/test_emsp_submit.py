"""Sending an eMSP command, on fakes: what is stored, sent and told, and what is refused."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chargegate.domain import commands as dc
from chargegate.domain.clock import utcnow
from chargegate.domain.emsp_commands import CpoAnswer, EmspRequestError
from chargegate.service.emsp.views import Requester

from .fakes_emsp import DRIVER, OPERATOR, FakeEmsp, Tables


async def test_an_accepted_command_is_responded_and_waits_for_its_result() -> None:
    emsp = FakeEmsp()
    peer = emsp.add_peer()
    view, created = await emsp.start_session(peer)
    assert created
    assert view["state"] == "RESPONDED" and view["final"] is False
    assert view["response"]["result"] == "ACCEPTED" and view["response"]["timeout"] == 30
    assert view["peer"] == "FR-CPO" and "response_url" not in view["sent"]
    assert emsp.kinds(view["id"]) == ["REQUESTED", "RESPONDED"]
    [sent] = emsp.channel.sent
    assert sent.command == "START_SESSION" and sent.command_id == view["id"]
    assert sent.target.token == "token-c" and sent.target.to_party == ("FR", "CPO")
    assert sent.target.from_party == ("NL", "EMS")
    ref = emsp.command(view["id"]).response_ref
    assert sent.body["response_url"] == (
        f"https://emsp.example.com/ocpi/emsp/2.2.1/commands/START_SESSION/{ref}"
    )
    # 2.2.1: a fresh authorization reference the Sessions and CDRs will come back with.
    assert (
        view["authorization_reference"]
        and sent.body["authorization_reference"] == (view["authorization_reference"])
    )


async def test_the_event_of_the_request_shows_the_command_before_the_answer() -> None:
    emsp = FakeEmsp()
    view, _ = await emsp.start_session(emsp.add_peer())
    requested, responded = emsp.tables.events
    assert requested.data["state"] == "REQUESTED" and requested.data["response"] is None
    assert responded.data == view
    assert requested.api_key_id == DRIVER.key_id


async def test_accepted_expires_after_the_announced_timeout_in_221_or_ours_in_211() -> None:
    emsp = FakeEmsp(emsp_default_result_timeout=90.0)
    emsp.channel.answer = CpoAnswer(status_code=1000, result="ACCEPTED", timeout=40)
    new, _ = await emsp.start_session(emsp.add_peer(version="2.2.1"))
    old, _ = await emsp.start_session(emsp.add_peer(version="2.1.1", party=("DE", "OLD")))
    for view, seconds, timeout in ((new, 40, 40), (old, 90, None)):
        c = emsp.command(view["id"])
        assert c.responded_at is not None and c.expires_at is not None
        assert c.expires_at - c.responded_at == timedelta(seconds=seconds)
        assert c.response_timeout == timeout


@pytest.mark.parametrize("result", ["REJECTED", "NOT_SUPPORTED", "UNKNOWN_SESSION"])
async def test_any_answer_but_accepted_is_final(result: str) -> None:
    emsp = FakeEmsp()
    emsp.channel.answer = CpoAnswer(status_code=1000, result=result, message="no")
    view, _ = await emsp.start_session(emsp.add_peer())
    assert view["state"] == "RESPONDED" and view["final"] is True
    assert view["response"]["message"] == "no" and view["expires_at"] is None


async def test_a_cpo_that_cannot_be_reached_fails_the_command() -> None:
    emsp = FakeEmsp()
    emsp.channel.answer = CpoAnswer(failure="ConnectError: refused")
    view, _ = await emsp.start_session(emsp.add_peer())
    assert view["state"] == "FAILED" and view["final"] is True
    assert view["failure"] == "ConnectError: refused" and view["response"] is None
    assert emsp.kinds(view["id"]) == ["REQUESTED", "FAILED"]


async def test_the_same_idempotency_key_replays_the_command_without_sending_again() -> None:
    emsp = FakeEmsp()
    peer = emsp.add_peer()
    first, created = await emsp.start_session(peer, idempotency_key="k1")
    again, created_again = await emsp.start_session(peer, idempotency_key="k1")
    assert created and not created_again
    assert again == first and len(emsp.channel.sent) == 1
    # Keys are per API key: another key's k1 is another command.
    other, created_other = await emsp.start_session(
        peer, idempotency_key="k1", requester=Requester(99, frozenset({"driver"}))
    )
    assert created_other and other["id"] != first["id"]


async def test_an_idempotency_key_used_for_another_request_is_a_mismatch() -> None:
    emsp = FakeEmsp()
    peer = emsp.add_peer()
    first, _ = await emsp.start_session(peer, idempotency_key="k1")
    with pytest.raises(EmspRequestError) as refused:
        await emsp.start_session(peer, idempotency_key="k1", location_id="LOC-2")
    assert refused.value.kind == "mismatch" and first["id"] in refused.value.message
    assert len(emsp.channel.sent) == 1


async def test_a_key_sent_twice_at_once_replays_the_command_that_won_the_insert() -> None:
    emsp = FakeEmsp()
    peer = emsp.add_peer()
    # The first request is stored by another writer between our lookup and our insert.
    won, _ = await emsp.start_session(peer, idempotency_key="k1")
    earlier = emsp.tables.commands.pop(won["id"])
    events = list(emsp.tables.events)
    emsp.tables.events.clear()

    def other_request_commits(tables: Tables) -> None:
        tables.commands[earlier.id] = earlier
        tables.events.extend(events)

    emsp.store.before_add = other_request_commits
    view, created = await emsp.start_session(peer, idempotency_key="k1")
    assert not created and view["id"] == earlier.id
    assert len(emsp.channel.sent) == 1  # only the winner's
    assert list(emsp.tables.commands) == [earlier.id]
    assert emsp.kinds(earlier.id) == ["REQUESTED", "RESPONDED"]


async def test_a_peer_that_is_not_connected_takes_no_command() -> None:
    emsp = FakeEmsp()
    peer = emsp.add_peer(state="UNREGISTERED")
    with pytest.raises(EmspRequestError) as refused:
        await emsp.start_session(peer)
    assert refused.value.kind == "conflict" and "UNREGISTERED" in refused.value.message
    with pytest.raises(EmspRequestError) as unknown:
        await emsp.commands.submit(DRIVER, "XX-NOP", _start(), {})
    assert unknown.value.kind == "not_found"
    assert emsp.tables.commands == {} and emsp.channel.sent == []


async def test_a_peer_without_a_commands_endpoint_takes_no_command() -> None:
    emsp = FakeEmsp()
    with pytest.raises(EmspRequestError) as refused:
        await emsp.start_session(emsp.add_peer(endpoints={"sessions": "https://x/sessions"}))
    assert refused.value.kind == "conflict" and emsp.tables.commands == {}


async def test_gireve_needs_evse_uid_in_start_session_and_gets_an_authorization_id() -> None:
    emsp = FakeEmsp()
    peer = emsp.add_peer(version="2.1.1", profile="gireve")
    with pytest.raises(EmspRequestError) as refused:
        await emsp.start_session(peer, evse_uid=None)
    assert refused.value.kind == "invalid" and "evse_uid is required" in refused.value.message
    assert emsp.tables.commands == {}
    view, _ = await emsp.start_session(peer, evse_uid="EVSE-1")
    # GIREVE 2.1.1 echoes authorization_id: a reference is made for it.
    assert view["authorization_reference"]


async def test_gireve_takes_start_and_stop_only() -> None:
    emsp = FakeEmsp()
    peer = emsp.add_peer(version="2.1.1", profile="gireve")
    reserve = dc.ReserveNow(
        location_id="LOC-1",
        token=_start().token,
        expiry_date=utcnow(),
        reservation_id="1",
    )
    with pytest.raises(EmspRequestError) as refused:
        await emsp.commands.submit(DRIVER, str(peer.id), reserve, {})
    assert refused.value.kind == "invalid" and "GIREVE" in refused.value.message


async def test_211_has_no_cancel_reservation_and_211_plain_start_gets_no_reference() -> None:
    emsp = FakeEmsp()
    peer = emsp.add_peer(version="2.1.1")
    cancel = dc.CancelReservation(reservation_id="1")
    with pytest.raises(EmspRequestError) as refused:
        await emsp.commands.submit(OPERATOR, str(peer.id), cancel, {})
    assert refused.value.kind == "invalid"
    view, _ = await emsp.start_session(peer)
    assert view["authorization_reference"] is None


async def test_unlock_is_for_operators_and_read_keys_send_nothing() -> None:
    emsp = FakeEmsp()
    peer = emsp.add_peer()
    unlock = dc.UnlockConnector(location_id="LOC-1", evse_uid="EVSE-1", connector_id="1")
    with pytest.raises(EmspRequestError) as driver:
        await emsp.commands.submit(DRIVER, str(peer.id), unlock, {})
    with pytest.raises(EmspRequestError) as reader:
        await emsp.start_session(peer, requester=Requester(3, frozenset({"read"})))
    assert driver.value.kind == reader.value.kind == "forbidden"
    view, created = await emsp.commands.submit(OPERATOR, str(peer.id), unlock, {})
    assert created and view["command"] == "UNLOCK_CONNECTOR"


async def test_a_command_the_peers_version_cannot_express_is_invalid_and_not_stored() -> None:
    emsp = FakeEmsp()
    emsp.channel.refuse_body = "token.type: OTHER only"
    with pytest.raises(EmspRequestError) as refused:
        await emsp.start_session(emsp.add_peer())
    assert refused.value.kind == "invalid" and refused.value.message == "token.type: OTHER only"
    assert emsp.tables.commands == {} and emsp.tables.events == []


async def test_to_party_routes_through_a_hub() -> None:
    emsp = FakeEmsp()
    peer = emsp.add_peer()
    await emsp.commands.submit(DRIVER, str(peer.id), _start(), {}, to_party="DE*ABC")
    assert emsp.channel.sent[0].target.to_party == ("DE", "ABC")
    with pytest.raises(EmspRequestError):
        await emsp.commands.submit(DRIVER, str(peer.id), _start(), {}, to_party="DE-AB")


async def test_a_driver_sees_its_own_commands_and_an_operator_all() -> None:
    emsp = FakeEmsp()
    peer = emsp.add_peer()
    mine, _ = await emsp.start_session(peer)
    theirs, _ = await emsp.start_session(peer, requester=OPERATOR)
    assert [v["id"] for v in await emsp.commands.list(DRIVER)] == [mine["id"]]
    assert {v["id"] for v in await emsp.commands.list(OPERATOR)} == {mine["id"], theirs["id"]}
    assert await emsp.commands.get(OPERATOR, mine["id"]) == mine
    with pytest.raises(EmspRequestError) as hidden:
        await emsp.commands.get(DRIVER, theirs["id"])
    assert hidden.value.kind == "not_found"
    assert await emsp.commands.list(OPERATOR, state="failed") == []
    assert len(await emsp.commands.list(OPERATOR, peer="FR-CPO")) == 2


def _start() -> dc.StartSession:
    return dc.StartSession(
        location_id="LOC-1",
        token=dc.Token(uid="TOKEN-1", type="APP_USER", contract_id="NL-EMS-C1"),
        evse_uid="EVSE-1",
    )
