"""eMSP commands whose outcome will not come, on fakes: the CPO's timeout passed, or no answer
was recorded before the process stopped."""

from __future__ import annotations

from datetime import timedelta

from chargegate.domain.emsp_commands import CpoAnswer
from chargegate.service.emsp.expiry import NO_ANSWER

from .fakes_emsp import OPERATOR, FakeEmsp, Sent


async def test_an_accepted_command_expires_once_its_timeout_passed() -> None:
    emsp = FakeEmsp()
    view, _ = await emsp.start_session(emsp.add_peer())
    assert await emsp.commands.resolve_expired() == 0
    emsp.age(view["id"], timedelta(seconds=29))
    assert await emsp.commands.resolve_expired() == 0
    emsp.age(view["id"], timedelta(seconds=1))
    assert await emsp.commands.resolve_expired() == 1
    now = await emsp.commands.get(OPERATOR, view["id"])
    assert now["state"] == "EXPIRED" and now["final"] is True and now["result"] is None
    assert emsp.kinds(view["id"]) == ["REQUESTED", "RESPONDED", "EXPIRED"]
    assert await emsp.commands.resolve_expired() == 0


async def test_final_answers_and_results_never_expire() -> None:
    emsp = FakeEmsp()
    peer = emsp.add_peer()
    done, _ = await emsp.start_session(peer)
    await emsp.post_result(done["id"], "ACCEPTED")
    emsp.channel.answer = CpoAnswer(status_code=1000, result="REJECTED")
    rejected, _ = await emsp.start_session(peer)
    for view in (done, rejected):
        emsp.age(view["id"], timedelta(days=1))
    assert await emsp.commands.resolve_expired() == 0
    assert emsp.command(done["id"]).state == "RESULT"
    assert emsp.command(rejected["id"]).state == "RESPONDED"


async def test_a_command_left_without_an_answer_fails_after_twice_the_http_timeout() -> None:
    emsp = FakeEmsp(emsp_http_timeout=10.0)
    stuck: list[str] = []

    async def the_process_stops(sent: Sent) -> None:
        stuck.append(sent.command_id)
        raise RuntimeError("stopped while sending")

    emsp.channel.during_send = the_process_stops
    try:
        await emsp.start_session(emsp.add_peer())
    except RuntimeError:
        pass
    [command_id] = stuck
    assert emsp.command(command_id).state == "REQUESTED"
    emsp.age(command_id, timedelta(seconds=24))
    assert await emsp.commands.resolve_expired() == 0
    emsp.age(command_id, timedelta(seconds=1))
    assert await emsp.commands.resolve_expired() == 1
    c = emsp.command(command_id)
    assert c.state == "FAILED" and c.failure == NO_ANSWER
    assert emsp.kinds(command_id) == ["REQUESTED", "FAILED"]


async def test_a_command_left_without_an_answer_but_with_a_result_is_the_result() -> None:
    emsp = FakeEmsp()
    stuck: list[str] = []

    async def result_then_stop(sent: Sent) -> None:
        stuck.append(sent.command_id)
        await emsp.post_result(sent.command_id, "ACCEPTED")
        raise RuntimeError("stopped while sending")

    emsp.channel.during_send = result_then_stop
    try:
        await emsp.start_session(emsp.add_peer())
    except RuntimeError:
        pass
    [command_id] = stuck
    emsp.age(command_id, timedelta(hours=1))
    assert await emsp.commands.resolve_expired() == 1
    assert emsp.command(command_id).state == "RESULT"
    assert emsp.kinds(command_id) == ["REQUESTED", "RESULT"]
