"""CommandResults an eMSP command gets from the CPO, on fakes: in order, before the answer,
twice, late, and for a response_url that is not ours."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from chargegate.domain import commands as dc
from chargegate.domain import emsp_commands as ec
from chargegate.domain.clock import utcnow
from chargegate.domain.emsp_commands import CpoAnswer
from chargegate.service.emsp.records import SentCommand

from .fakes_emsp import OPERATOR, FakeEmsp, Sent, Tables


async def test_a_result_after_the_answer_ends_the_command() -> None:
    emsp = FakeEmsp()
    view, _ = await emsp.start_session(emsp.add_peer())
    assert await emsp.post_result(view["id"], "ACCEPTED", "charging") is None
    now = await emsp.commands.get(OPERATOR, view["id"])
    assert now["state"] == "RESULT" and now["final"] is True
    assert now["result"]["result"] == "ACCEPTED" and now["result"]["message"] == "charging"
    assert now["result"]["late"] is False
    assert emsp.kinds(view["id"]) == ["REQUESTED", "RESPONDED", "RESULT"]
    assert emsp.tables.events[-1].data == now


async def test_the_same_result_again_is_taken_quietly_and_another_is_refused() -> None:
    emsp = FakeEmsp()
    view, _ = await emsp.start_session(emsp.add_peer())
    await emsp.post_result(view["id"], "ACCEPTED")
    revision = emsp.command(view["id"]).revision
    assert await emsp.post_result(view["id"], "ACCEPTED") is None
    note = await emsp.post_result(view["id"], "FAILED")
    assert note == "result ACCEPTED is already recorded; FAILED was not taken"
    assert emsp.command(view["id"]).result == "ACCEPTED"
    assert emsp.command(view["id"]).revision == revision
    assert emsp.kinds(view["id"]) == ["REQUESTED", "RESPONDED", "RESULT"]


async def test_a_result_that_beats_the_answer_is_told_after_it() -> None:
    emsp = FakeEmsp()

    async def cpo_posts_result_first(sent: Sent) -> None:
        assert await emsp.post_result(sent.command_id, "ACCEPTED") is None
        # Kept, not told: the command still waits for the answer.
        assert emsp.command(sent.command_id).state == "REQUESTED"
        assert emsp.kinds(sent.command_id) == ["REQUESTED"]

    emsp.channel.during_send = cpo_posts_result_first
    view, _ = await emsp.start_session(emsp.add_peer())
    assert view["state"] == "RESULT" and view["final"] is True
    assert emsp.kinds(view["id"]) == ["REQUESTED", "RESPONDED", "RESULT"]
    responded = emsp.tables.events[1].data
    # The RESPONDED event shows the command as it stood then: answered, no result yet.
    assert responded["state"] == "RESPONDED" and responded["result"] is None
    assert responded["final"] is False and responded["response"]["result"] == "ACCEPTED"
    assert emsp.tables.events[2].data == view


async def test_a_result_for_a_command_whose_sending_failed_is_late_and_changes_nothing() -> None:
    emsp = FakeEmsp()
    emsp.channel.answer = CpoAnswer(failure="ReadTimeout")
    view, _ = await emsp.start_session(emsp.add_peer())
    assert view["final"] is True
    await emsp.post_result(view["id"], "ACCEPTED")
    now = await emsp.commands.get(OPERATOR, view["id"])
    # FAILED was final: the result is recorded and told, the state stays.
    assert now["state"] == "FAILED" and now["final"] is True
    assert (now["result"]["result"], now["result"]["late"]) == ("ACCEPTED", True)
    assert emsp.kinds(view["id"]) == ["REQUESTED", "FAILED", "LATE_RESULT"]


async def test_an_unreadable_success_leaves_the_command_open_for_its_result() -> None:
    emsp = FakeEmsp()
    emsp.channel.answer = CpoAnswer(status_code=1000, message="could not read: 'garbage'")
    view, _ = await emsp.start_session(emsp.add_peer())
    assert (view["state"], view["final"]) == ("RESPONDED", False)
    assert view["expires_at"] is not None
    await emsp.post_result(view["id"], "ACCEPTED", "charging")
    now = await emsp.commands.get(OPERATOR, view["id"])
    assert (now["state"], now["final"], now["result"]["result"]) == ("RESULT", True, "ACCEPTED")
    assert emsp.kinds(view["id"]) == ["REQUESTED", "RESPONDED", "RESULT"]
    finals = [e.data["final"] for e in emsp.tables.events if e.command_id == view["id"]]
    assert finals == [False, False, True]


async def test_an_unreadable_success_without_a_result_expires() -> None:
    emsp = FakeEmsp()
    emsp.channel.answer = CpoAnswer(status_code=1000)
    view, _ = await emsp.start_session(emsp.add_peer())
    emsp.age(view["id"], timedelta(hours=1))
    assert await emsp.commands.resolve_expired() == 1
    assert emsp.command(view["id"]).state == "EXPIRED"
    assert emsp.kinds(view["id"]) == ["REQUESTED", "RESPONDED", "EXPIRED"]


async def test_a_result_after_a_refusal_is_late_and_changes_nothing() -> None:
    emsp = FakeEmsp()
    emsp.channel.answer = CpoAnswer(status_code=1000, result="REJECTED")
    view, _ = await emsp.start_session(emsp.add_peer())
    assert (view["state"], view["final"]) == ("RESPONDED", True)
    await emsp.post_result(view["id"], "ACCEPTED")
    assert emsp.command(view["id"]).state == "RESPONDED"
    assert emsp.kinds(view["id"]) == ["REQUESTED", "RESPONDED", "LATE_RESULT"]


@pytest.mark.parametrize(
    "state", [ec.EmspCommandState.RESULT, ec.EmspCommandState.EXPIRED, ec.EmspCommandState.FAILED]
)
@pytest.mark.parametrize("result", [None, "ACCEPTED", "REJECTED"])
def test_no_transition_changes_a_final_state(
    state: ec.EmspCommandState, result: str | None
) -> None:
    """Every way a change can come, from every final state: the state stays."""
    for response in (None, "ACCEPTED", "REJECTED"):
        now = ec.Snapshot(dc.CommandType.START_SESSION, state, response, result, 1000)
        assert ec.is_final(now.state, now.response_result, now.response_status_code)
        decided = [
            ec.on_response(now),
            ec.on_failure(now),
            ec.on_deadline(now),
            *(ec.on_result(now, r) for r in ("ACCEPTED", "REJECTED", "FAILED")),
        ]
        for transition in decided:
            assert ec.settled(now, transition).state is state
    # A transition a use case would get wrong is stopped, with a note saying why.
    now = ec.Snapshot(dc.CommandType.START_SESSION, state, "ACCEPTED", result, 1000)
    moved = ec.Transition(ec.EmspCommandState.REQUESTED, (ec.EventKind.REQUESTED,))
    kept = ec.settled(now, moved)
    assert (kept.state, kept.events) == (state, ()) and kept.note


async def test_a_failure_after_a_result_came_first_is_the_result() -> None:
    emsp = FakeEmsp()
    emsp.channel.answer = CpoAnswer(failure="ReadTimeout")

    async def result_first(sent: Sent) -> None:
        await emsp.post_result(sent.command_id, "REJECTED")

    emsp.channel.during_send = result_first
    view, _ = await emsp.start_session(emsp.add_peer())
    assert view["state"] == "RESULT" and view["result"]["result"] == "REJECTED"
    assert emsp.kinds(view["id"]) == ["REQUESTED", "RESULT"]


async def test_a_late_result_is_recorded_once_and_the_command_stays_expired() -> None:
    emsp = FakeEmsp()
    view, _ = await emsp.start_session(emsp.add_peer())
    emsp.age(view["id"], timedelta(minutes=5))
    assert await emsp.commands.resolve_expired() == 1
    assert await emsp.post_result(view["id"], "ACCEPTED") is None
    now = await emsp.commands.get(OPERATOR, view["id"])
    assert now["state"] == "EXPIRED" and now["result"]["late"] is True
    assert emsp.kinds(view["id"]) == ["REQUESTED", "RESPONDED", "EXPIRED", "LATE_RESULT"]
    note = await emsp.post_result(view["id"], "REJECTED")
    assert note == "a late result (ACCEPTED) is already recorded"
    assert emsp.kinds(view["id"])[-1] == "LATE_RESULT" and len(emsp.kinds(view["id"])) == 4


async def test_a_221_reservation_is_canceled_through_its_response_url() -> None:
    emsp = FakeEmsp()
    peer = emsp.add_peer()
    reserve = dc.ReserveNow(
        location_id="LOC-1",
        token=dc.Token(uid="T", type="RFID", contract_id="C"),
        expiry_date=utcnow() + timedelta(hours=1),
        reservation_id="1001",
    )
    view, _ = await emsp.commands.submit(OPERATOR, str(peer.id), reserve, {})
    await emsp.post_result(view["id"], "ACCEPTED")
    assert await emsp.post_result(view["id"], "CANCELED_RESERVATION") is None
    assert emsp.command(view["id"]).result == "CANCELED_RESERVATION"
    assert emsp.kinds(view["id"]) == ["REQUESTED", "RESPONDED", "RESULT", "RESULT"]


async def test_a_result_to_a_url_we_did_not_give_this_peer_is_unknown() -> None:
    emsp = FakeEmsp()
    peer = emsp.add_peer()
    other = emsp.add_peer(party=("DE", "OTH"))
    view, _ = await emsp.start_session(peer)
    c = emsp.command(view["id"])
    with pytest.raises(LookupError):
        await emsp.commands.record_result(other, "2.2.1", c.type, c.response_ref, "ACCEPTED", None)
    with pytest.raises(LookupError):
        await emsp.commands.record_result(peer, "2.2.1", "STOP_SESSION", c.response_ref, "A", None)
    with pytest.raises(LookupError):
        await emsp.commands.record_result(peer, "2.2.1", c.type, "not-ours", "ACCEPTED", None)
    assert emsp.command(view["id"]).result is None


async def test_a_writer_that_comes_first_makes_the_transition_read_again() -> None:
    emsp = FakeEmsp()
    view, _ = await emsp.start_session(emsp.add_peer())
    command_id = view["id"]

    def another_node_records_the_same_result(tables: Tables) -> None:
        c = tables.commands[command_id]
        tables.commands[command_id] = _with_result(c, "ACCEPTED")

    emsp.store.before_update.append(another_node_records_the_same_result)
    assert await emsp.post_result(command_id, "ACCEPTED") is None
    c = emsp.command(command_id)
    # Our write lost, and on reading again there was nothing left to do.
    assert c.state == "RESULT" and c.revision == 2
    assert emsp.kinds(command_id) == ["REQUESTED", "RESPONDED"]


async def test_a_lost_write_leaves_no_event_behind() -> None:
    emsp = FakeEmsp()
    view, _ = await emsp.start_session(emsp.add_peer())
    command_id = view["id"]

    def someone_touches_it(tables: Tables) -> None:
        c = tables.commands[command_id]
        tables.commands[command_id] = dataclasses.replace(c, revision=c.revision + 1)

    emsp.store.before_update.extend([someone_touches_it, someone_touches_it])
    await emsp.post_result(command_id, "REJECTED")
    assert emsp.command(command_id).result == "REJECTED"
    assert emsp.kinds(command_id) == ["REQUESTED", "RESPONDED", "RESULT"]


def _with_result(c: SentCommand, result: str) -> SentCommand:
    return dataclasses.replace(c, state="RESULT", result=result, revision=c.revision + 1)
