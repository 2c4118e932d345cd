"""Sessions and CDRs a CPO pushes to our eMSP role, on fakes: linked to the command that
started them, and told on its stream."""

from __future__ import annotations

import pytest

from chargegate.service.emsp.receipts import InvalidObject

from .fakes_emsp import OPERATOR, FakeEmsp


async def test_a_session_with_our_reference_is_linked_and_told() -> None:
    emsp = FakeEmsp()
    peer = emsp.add_peer()
    view, _ = await emsp.start_session(peer)
    reference = view["authorization_reference"].upper()  # a CiString: case does not matter
    session = {"id": "S1", "status": "ACTIVE", "kwh": 1.5, "authorization_reference": reference}
    await emsp.receipts.put_session(peer, "2.2.1", ("fr", "cpo"), "S1", session)
    now = await emsp.commands.get(OPERATOR, view["id"])
    assert now["session"] == {
        "id": "S1",
        "country_code": "FR",
        "party_id": "CPO",
        "status": "ACTIVE",
        "kwh": 1.5,
        "last_updated": None,
    }
    assert emsp.kinds(view["id"])[-1] == "SESSION"
    await emsp.receipts.put_session(peer, "2.2.1", ("FR", "CPO"), "S1", {"kwh": 3}, partial=True)
    assert (await emsp.commands.get(OPERATOR, view["id"]))["session"]["kwh"] == 3
    stored = await emsp.receipts.get_session(peer, ("FR", "CPO"), "S1")
    assert stored == {**session, "kwh": 3}


async def test_a_211_session_is_linked_by_token_and_location() -> None:
    emsp = FakeEmsp()
    peer = emsp.add_peer(version="2.1.1")
    view, _ = await emsp.start_session(peer)
    session = {"id": "S1", "auth_id": "nl-ems-c1", "location": {"id": "loc-1"}}
    await emsp.receipts.put_session(peer, "2.1.1", ("FR", "CPO"), "S1", session)
    assert emsp.tables.sessions[0].command_id == view["id"]
    # A second session finds the command taken.
    await emsp.receipts.put_session(peer, "2.1.1", ("FR", "CPO"), "S2", {**session, "id": "S2"})
    assert emsp.tables.sessions[1].command_id is None


async def test_a_cdr_is_linked_through_its_session_and_a_retry_is_the_same_cdr() -> None:
    emsp = FakeEmsp()
    peer = emsp.add_peer()
    view, _ = await emsp.start_session(peer)
    reference = view["authorization_reference"]
    await emsp.receipts.put_session(
        peer, "2.2.1", ("FR", "CPO"), "S1", {"authorization_reference": reference}
    )
    cdr = {"id": "C1", "session_id": "S1", "total_energy": 7.5, "total_cost": {"excl_vat": 2}}
    pk = await emsp.receipts.post_cdr(peer, "2.2.1", cdr)
    assert await emsp.receipts.post_cdr(peer, "2.2.1", cdr) == pk
    now = await emsp.commands.get(OPERATOR, view["id"])
    assert now["cdr"] == {"id": "C1", "total_energy": 7.5, "total_cost": {"excl_vat": 2}}
    assert emsp.kinds(view["id"])[-2:] == ["SESSION", "CDR"]
    assert await emsp.receipts.get_cdr(peer, pk) == cdr
    [listed] = await emsp.receipts.cdrs_of(api_key_id=None, command_id=view["id"], limit=10)
    assert listed["id"] == "C1" and listed["country_code"] == "FR"


async def test_objects_that_cannot_be_stored_are_refused() -> None:
    emsp = FakeEmsp()
    peer = emsp.add_peer()
    with pytest.raises(InvalidObject):
        await emsp.receipts.put_session(peer, "2.2.1", ("FR", "CPO"), "S1", {"id": "S2"})
    with pytest.raises(InvalidObject):
        await emsp.receipts.post_cdr(peer, "2.2.1", {"id": ""})
    with pytest.raises(LookupError):
        await emsp.receipts.put_session(peer, "2.2.1", ("FR", "CPO"), "S9", {}, partial=True)
    assert emsp.tables.sessions == [] and emsp.tables.cdrs == []
