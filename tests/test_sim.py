"""The OCPP 1.6J station simulator, against a minimal CSMS over real sockets."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ocpp.exceptions import OCPPError
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result, datatypes, enums
from websockets.asyncio.server import ServerConnection

from chargegate.sim import Behaviour, Script, SimulatedStation16, run_fleet
from chargegate.sim import cli as sim_cli
from chargegate.sim.script import CSMS_ACTIONS, STATUS_ANSWERS, status_for

from .support import sim_scenarios
from .support.fake_csms import (
    QUIET_HEARTBEAT,
    FakeCsms,
    RecordingCsms,
    connect_fixture,  # noqa: F401  (the `connect` fixture)
    serving,
    sim_parser,
)

BLOCKED_TAG = "BLOCKED"


def in_minutes(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


class Csms16(RecordingCsms, ChargePoint):
    """Server side of one OCPP 1.6J connection: records all, answers like a permissive CSMS
    (every idTag but BLOCKED_TAG accepted)."""

    RESULTS = call_result

    def __init__(self, station_id: str, connection: ServerConnection, tx_ids: Any) -> None:
        # Generous: a loaded CI machine once took longer than 0.5 s to answer a ReserveNow;
        # tests that expect silence bound their own wait (asyncio.wait_for).
        ChargePoint.__init__(self, station_id, connection, response_timeout=10)
        RecordingCsms.__init__(self)
        self._tx_ids = tx_ids

    def _tag_info(self, id_tag: str) -> datatypes.IdTagInfo:
        status = (
            enums.AuthorizationStatus.blocked
            if id_tag == BLOCKED_TAG
            else enums.AuthorizationStatus.accepted
        )
        return datatypes.IdTagInfo(status=status)

    @on(enums.Action.start_transaction)
    def on_start_transaction(self, **payload: Any) -> call_result.StartTransaction:
        self._got(enums.Action.start_transaction, payload)
        return call_result.StartTransaction(
            transaction_id=next(self._tx_ids), id_tag_info=self._tag_info(payload["id_tag"])
        )

    @on(enums.Action.authorize)
    def on_authorize(self, **payload: Any) -> call_result.Authorize:
        self._got(enums.Action.authorize, payload)
        return call_result.Authorize(id_tag_info=self._tag_info(payload["id_tag"]))


@pytest.fixture
async def csms() -> AsyncIterator[FakeCsms[Csms16]]:
    tx_ids = itertools.count(1001)
    fake = FakeCsms(
        lambda station_id, ws: Csms16(station_id, ws, tx_ids), SimulatedStation16, "CP-1"
    )
    async with serving(fake) as served:
        yield served


StationFactory = Callable[..., Awaitable[tuple[SimulatedStation16, Csms16]]]


# -- boot, statuses, heartbeats ---------------------------------------------------------------


async def test_boot_then_every_connector_reported_available(
    connect: StationFactory, csms: FakeCsms[Csms16]
) -> None:
    station, cp = await connect("CP-BOOT", connectors=3)

    assert station.ready.is_set()
    assert csms.subprotocols["CP-BOOT"] == "ocpp1.6"
    assert cp.messages[0][0] == "BootNotification"
    assert cp.messages[0][1]["charge_point_model"] == station.model
    statuses = [p for name, p in cp.messages if name == "StatusNotification"]
    assert [(s["connector_id"], s["status"], s["error_code"]) for s in statuses] == [
        (c, "Available", "NoError") for c in range(4)
    ]
    # The interval the CSMS announced becomes the station's HeartbeatInterval.
    assert station.configuration.get("HeartbeatInterval") == "300"


async def test_heartbeats_at_the_overridden_interval(connect: StationFactory) -> None:
    _, cp = await connect(heartbeat_interval=0.05)

    await cp.wait_for("Heartbeat")
    await cp.wait_for("Heartbeat")


# -- every scripted status answer ---------------------------------------------------------------


async def _request_for(action: str, station: SimulatedStation16, cp: Csms16) -> Any:
    """A CALL of `action` that a willing station would accept, after any setup it needs."""
    if action == "RemoteStartTransaction":
        return call.RemoteStartTransaction(id_tag="TAG-1", connector_id=1)
    if action == "RemoteStopTransaction":
        return call.RemoteStopTransaction(transaction_id=await station.start_transaction(1, "T"))
    if action == "ReserveNow":
        return call.ReserveNow(
            connector_id=1, expiry_date=in_minutes(10), id_tag="TAG-1", reservation_id=1
        )
    if action == "CancelReservation":
        reserve = await _request_for("ReserveNow", station, cp)
        assert (await cp.call(reserve, suppress=False)).status == "Accepted"
        return call.CancelReservation(reservation_id=1)
    if action == "UnlockConnector":
        return call.UnlockConnector(connector_id=1)
    if action == "Reset":
        return call.Reset(type=enums.ResetType.soft)
    if action == "ChangeConfiguration":
        return call.ChangeConfiguration(key="HeartbeatInterval", value="120")
    if action == "ClearCache":
        return call.ClearCache()
    if action == "TriggerMessage":
        return call.TriggerMessage(requested_message=enums.MessageTrigger.heartbeat)
    raise AssertionError(action)


STATUS_CASES = [
    (action, behaviour.value, status)
    for action, answers in STATUS_ANSWERS.items()
    for behaviour, status in answers.items()
]


@pytest.mark.parametrize(("action", "behaviour", "expected"), STATUS_CASES)
async def test_each_scripted_behaviour_gives_its_status(
    connect: StationFactory, action: str, behaviour: str, expected: str
) -> None:
    station, cp = await connect(auto_transactions=False)
    request = await _request_for(action, station, cp)
    station.script.set(action, behaviour)

    result = await cp.call(request, suppress=False)

    assert result.status == expected
    assert station.received[-1][0] == action


@pytest.mark.parametrize(("behaviour", "error"), sim_scenarios.CALL_ERRORS)
@pytest.mark.parametrize("action", ["RemoteStartTransaction", "GetConfiguration", "DataTransfer"])
async def test_scripted_call_errors(
    connect: StationFactory, action: str, behaviour: str, error: type[OCPPError]
) -> None:
    station, cp = await connect()
    request: Any = {
        "RemoteStartTransaction": call.RemoteStartTransaction(id_tag="TAG-1"),
        "GetConfiguration": call.GetConfiguration(),
        "DataTransfer": call.DataTransfer(vendor_id="acme"),
    }[action]

    await sim_scenarios.check_call_error(station, cp, action, behaviour, error, request)


async def test_silent_drops_only_that_call(connect: StationFactory) -> None:
    station, cp = await connect()
    request = call.RemoteStartTransaction(id_tag="TAG-1")

    await sim_scenarios.check_silent_drops_only_that_call(
        station, cp, "RemoteStartTransaction", request, call.ClearCache()
    )


async def test_scripted_behaviour_for_a_number_of_calls(connect: StationFactory) -> None:
    station, cp = await connect()
    station.script.set("ClearCache", "reject", times=2)

    answers = [(await cp.call(call.ClearCache(), suppress=False)).status for _ in range(3)]

    assert answers == ["Rejected", "Rejected", "Accepted"]


async def test_disconnect_closes_the_socket_without_answer(connect: StationFactory) -> None:
    station, cp = await connect()
    request = call.ReserveNow(
        connector_id=1, expiry_date=in_minutes(10), id_tag="TAG-1", reservation_id=3
    )

    await sim_scenarios.check_disconnect_without_answer(station, cp, "ReserveNow", request)


# -- what the station does after accepting ---------------------------------------------------


async def test_remote_start_then_stop_plays_a_whole_transaction(connect: StationFactory) -> None:
    station, cp = await connect(meter_wh_per_tick=400)
    since = cp.mark()

    started = await cp.call(call.RemoteStartTransaction(id_tag="TAG-A"), suppress=False)
    assert started.status == "Accepted"
    start = await cp.wait_for("StartTransaction", since)
    await cp.wait_for("StatusNotification", since, status="Charging")

    assert start["id_tag"] == "TAG-A"
    assert start["connector_id"] == 1
    assert "reservation_id" not in start
    assert (
        cp.index_of("StatusNotification", status="Preparing", connector_id=1)
        < cp.index_of("StartTransaction")
        < cp.index_of("StatusNotification", status="Charging", connector_id=1)
    )
    (transaction_id,) = station.transactions

    since = cp.mark()
    stopped = await cp.call(call.RemoteStopTransaction(transaction_id), suppress=False)
    assert stopped.status == "Accepted"
    stop = await cp.wait_for("StopTransaction", since)
    await cp.wait_for("StatusNotification", since, status="Available", connector_id=1)

    assert stop["transaction_id"] == transaction_id
    assert stop["reason"] == "Remote"
    assert stop["meter_stop"] == start["meter_start"] + 400
    finishing = cp.index_of("StatusNotification", status="Finishing", connector_id=1)
    assert cp.index_of("StopTransaction") < finishing
    assert station.transactions == {}


async def test_remote_start_rejected_on_a_busy_connector(connect: StationFactory) -> None:
    station, cp = await connect()
    await station.start_transaction(1, "TAG-A")

    result = await cp.call(call.RemoteStartTransaction("TAG-B", connector_id=1), suppress=False)

    assert result.status == "Rejected"
    assert len(station.transactions) == 1


async def test_start_refused_by_csms_is_stopped_deauthorized(connect: StationFactory) -> None:
    station, cp = await connect()

    await cp.call(call.RemoteStartTransaction(id_tag=BLOCKED_TAG), suppress=False)
    stop = await cp.wait_for("StopTransaction")

    assert stop["reason"] == "DeAuthorized"
    assert station.transactions == {}


async def test_unlock_during_transaction_stops_it_first(connect: StationFactory) -> None:
    station, cp = await connect()
    transaction_id = await station.start_transaction(2, "TAG-A")
    since = cp.mark()

    result = await cp.call(call.UnlockConnector(connector_id=2), suppress=False)
    stop = await cp.wait_for("StopTransaction", since)
    await cp.wait_for("StatusNotification", since, connector_id=2, status="Available")

    assert result.status == "Unlocked"
    assert stop["transaction_id"] == transaction_id
    assert stop["reason"] == "UnlockCommand"
    assert cp.index_of("StopTransaction") < cp.index_of(
        "StatusNotification", connector_id=2, status="Finishing"
    )


async def test_trigger_message_sends_the_requested_message(connect: StationFactory) -> None:
    _, cp = await connect()
    since = cp.mark()

    result = await cp.call(
        call.TriggerMessage(requested_message="StatusNotification", connector_id=2),
        suppress=False,
    )
    status = await cp.wait_for("StatusNotification", since)

    assert result.status == "Accepted"
    assert status["connector_id"] == 2


async def test_reset_stops_transactions_and_boots_again(connect: StationFactory) -> None:
    station, cp = await connect()
    await station.start_transaction(1, "TAG-A")
    since = cp.mark()

    result = await cp.call(call.Reset(type="Hard"), suppress=False)
    stop = await cp.wait_for("StopTransaction", since)
    await cp.wait_for("BootNotification", since)

    assert result.status == "Accepted"
    assert stop["reason"] == "HardReset"
    assert station.transactions == {}


# -- reservations -----------------------------------------------------------------------------


async def test_reserve_now_with_same_id_replaces_the_reservation(connect: StationFactory) -> None:
    station, cp = await connect()

    first = await cp.call(
        call.ReserveNow(connector_id=1, expiry_date=in_minutes(10), id_tag="A", reservation_id=7),
        suppress=False,
    )
    await cp.wait_for("StatusNotification", connector_id=1, status="Reserved")
    since = cp.mark()
    second = await cp.call(
        call.ReserveNow(connector_id=2, expiry_date=in_minutes(20), id_tag="B", reservation_id=7),
        suppress=False,
    )
    await cp.wait_for("StatusNotification", since, connector_id=2, status="Reserved")
    await cp.wait_for("StatusNotification", since, connector_id=1, status="Available")

    assert (first.status, second.status) == ("Accepted", "Accepted")
    assert list(station.reservations) == [7]
    assert (station.reservations[7].connector_id, station.reservations[7].id_tag) == (2, "B")

    # The replacement is what a start for B uses, and using it ends it.
    since = cp.mark()
    await cp.call(call.RemoteStartTransaction(id_tag="B"), suppress=False)
    start = await cp.wait_for("StartTransaction", since)
    await cp.wait_for("StatusNotification", since, connector_id=2, status="Charging")
    assert (start["connector_id"], start["reservation_id"]) == (2, 7)
    assert station.reservations == {}


async def test_reserve_now_on_a_charging_connector_is_occupied(connect: StationFactory) -> None:
    station, cp = await connect()
    await station.start_transaction(1, "TAG-A")

    result = await cp.call(
        call.ReserveNow(connector_id=1, expiry_date=in_minutes(5), id_tag="B", reservation_id=9),
        suppress=False,
    )

    assert result.status == "Occupied"
    assert station.reservations == {}


async def test_cancel_unknown_reservation_is_rejected_even_when_accepting(
    connect: StationFactory,
) -> None:
    station, cp = await connect()
    assert station.script.behaviour("CancelReservation") == Behaviour.ACCEPT

    result = await cp.call(call.CancelReservation(reservation_id=404), suppress=False)

    assert result.status == "Rejected"


async def test_cancel_reservation_frees_the_connector(connect: StationFactory) -> None:
    station, cp = await connect()
    await cp.call(
        call.ReserveNow(connector_id=2, expiry_date=in_minutes(5), id_tag="A", reservation_id=5),
        suppress=False,
    )
    await cp.wait_for("StatusNotification", connector_id=2, status="Reserved")
    since = cp.mark()

    result = await cp.call(call.CancelReservation(reservation_id=5), suppress=False)
    await cp.wait_for("StatusNotification", since, connector_id=2, status="Available")

    assert result.status == "Accepted"
    assert station.reservations == {}


async def test_reservation_expires(connect: StationFactory) -> None:
    station, cp = await connect()
    expiry = (datetime.now(UTC) + timedelta(seconds=0.2)).isoformat()
    await cp.call(
        call.ReserveNow(connector_id=1, expiry_date=expiry, id_tag="A", reservation_id=6),
        suppress=False,
    )
    since = cp.mark()

    await cp.wait_for("StatusNotification", since, connector_id=1, status="Available")

    assert station.reservations == {}


# -- configuration ----------------------------------------------------------------------------


async def test_get_configuration_reports_unknown_keys(connect: StationFactory) -> None:
    _, cp = await connect()

    result = await cp.call(
        call.GetConfiguration(key=["HeartbeatInterval", "NoSuchKey"]), suppress=False
    )

    assert result.configuration_key == [
        {"key": "HeartbeatInterval", "readonly": False, "value": "300"}
    ]
    assert result.unknown_key == ["NoSuchKey"]


async def test_get_configuration_without_keys_returns_all(connect: StationFactory) -> None:
    _, cp = await connect(connectors=3)

    result = await cp.call(call.GetConfiguration(), suppress=False)

    by_key = {entry["key"]: entry for entry in result.configuration_key}
    assert len(by_key) >= 10
    assert by_key["NumberOfConnectors"] == {
        "key": "NumberOfConnectors",
        "readonly": True,
        "value": "3",
    }
    assert result.unknown_key is None


async def test_change_configuration_updates_writable_keys_only(connect: StationFactory) -> None:
    station, cp = await connect()

    changed = await cp.call(call.ChangeConfiguration("MeterValueSampleInterval", "15"), False)
    readonly = await cp.call(call.ChangeConfiguration("NumberOfConnectors", "9"), False)
    unknown = await cp.call(call.ChangeConfiguration("NoSuchKey", "1"), False)

    assert (changed.status, readonly.status, unknown.status) == (
        "Accepted",
        "Rejected",
        "NotSupported",
    )
    assert station.configuration.get("MeterValueSampleInterval") == "15"
    assert station.configuration.get("NumberOfConnectors") == "2"
    assert station.configuration.get("NoSuchKey") is None


# -- helpers tests call directly --------------------------------------------------------------


async def test_wait_for_call_returns_each_call_once(connect: StationFactory) -> None:
    station, cp = await connect(auto_transactions=False)

    await cp.call(call.RemoteStartTransaction(id_tag="X", connector_id=2), suppress=False)
    await cp.call(call.RemoteStartTransaction(id_tag="Y"), suppress=False)

    assert await station.wait_for_call("RemoteStartTransaction", 0.5) == {
        "idTag": "X",
        "connectorId": 2,
    }
    assert await station.wait_for_call("RemoteStartTransaction", 0.5) == {"idTag": "Y"}
    with pytest.raises(TimeoutError):
        await station.wait_for_call("RemoteStartTransaction", 0.05)

    # A call arriving while waiting wakes the waiter.
    waiting = asyncio.create_task(station.wait_for_call("ClearCache", 1.0))
    await asyncio.sleep(0)
    await cp.call(call.ClearCache(), suppress=False)
    assert await waiting == {}


async def test_direct_transaction_methods(connect: StationFactory) -> None:
    station, cp = await connect(auto_transactions=False)

    assert await station.authorize("TAG-A") == "Accepted"
    assert await station.authorize(BLOCKED_TAG) == "Blocked"
    await station.send_status(1, "Preparing")
    transaction_id = await station.start_transaction(1, "TAG-A")
    await station.send_meter_values(1, transaction_id, 1500)
    await station.stop_transaction(transaction_id)

    meter = await cp.wait_for("MeterValues")
    sample = meter["meter_value"][0]["sampled_value"][0]
    assert (meter["transaction_id"], sample["value"], sample["unit"]) == (
        transaction_id,
        "1500",
        "Wh",
    )
    stop = await cp.wait_for("StopTransaction")
    assert (stop["reason"], stop["meter_stop"]) == ("Local", 1500 + station.meter_wh_per_tick)
    assert await cp.wait_for("StatusNotification", status="Preparing", connector_id=1)
    with pytest.raises(ValueError, match="no transaction"):
        await station.stop_transaction(transaction_id)


async def test_periodic_meter_values_during_a_transaction(connect: StationFactory) -> None:
    station, cp = await connect(meter_interval=0.05, meter_wh_per_tick=100)
    transaction_id = await station.start_transaction(1, "TAG-A")

    first = await cp.wait_for("MeterValues")
    second = await cp.wait_for("MeterValues")

    values = [int(m["meter_value"][0]["sampled_value"][0]["value"]) for m in (first, second)]
    assert values == [100, 200]
    assert first["transaction_id"] == transaction_id


# -- script -----------------------------------------------------------------------------------


def test_script_rejects_unknown_behaviour() -> None:
    with pytest.raises(ValueError, match="unknown behaviour 'maybe'"):
        Script().set("RemoteStartTransaction", "maybe")


@pytest.mark.parametrize(
    ("action", "behaviour", "message"),
    [
        ("UnlockConnector", "occupied", "makes no sense for UnlockConnector"),
        ("RemoteStartTransaction", "reboot_required", "makes no sense"),
        ("GetConfiguration", "reject", "makes no sense"),
        ("DataTransfer", "accept", "makes no sense"),
        ("BootNotification", "silent", "unknown action 'BootNotification'"),
        ("RemoteStart", "accept", "unknown action"),
    ],
)
def test_script_rejects_pairs_that_make_no_sense(action: str, behaviour: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Script().set(action, behaviour)


def test_script_default_must_apply_everywhere() -> None:
    with pytest.raises(ValueError, match="cannot be the default"):
        Script(default="occupied")


def test_script_default_reject_means_the_negative_answer() -> None:
    script = Script(default="reject")

    assert script.behaviour("RemoteStopTransaction") == Behaviour.REJECT
    assert script.behaviour("UnlockConnector") == Behaviour.UNLOCK_FAILED
    assert script.behaviour("GetConfiguration") == Behaviour.ACCEPT


def test_every_allowed_status_pair_has_an_answer() -> None:
    script = Script()
    for action in CSMS_ACTIONS:
        for behaviour in Behaviour:
            try:
                script.set(action, behaviour)
            except ValueError:
                continue
            if action in STATUS_ANSWERS and behaviour not in {
                Behaviour.CALL_ERROR,
                Behaviour.NOT_IMPLEMENTED,
                Behaviour.SILENT,
                Behaviour.DISCONNECT,
            }:
                assert status_for(action, behaviour)


def test_script_from_cli_values() -> None:
    script = Script.from_cli("reject", ["ReserveNow=occupied", " ClearCache = silent "])

    assert script.as_dict() == {"ReserveNow": "occupied", "ClearCache": "silent"}
    assert script.default == Behaviour.REJECT
    with pytest.raises(ValueError, match="ACTION=BEHAVIOUR"):
        Script.from_cli("accept", ["ReserveNow"])


# -- fleet and command line -------------------------------------------------------------------


async def test_fleet_boots_every_station_and_closes_them(csms: FakeCsms[Csms16]) -> None:
    script = Script()
    fleet = await run_fleet(csms.url, 3, 1, script, heartbeat_interval=QUIET_HEARTBEAT)
    try:
        assert [station.id for station in fleet] == ["SIM-00000", "SIM-00001", "SIM-00002"]
        assert all(station.ready.is_set() for station in fleet)
        assert sorted(csms.sessions) == ["SIM-00000", "SIM-00001", "SIM-00002"]
        # One script for the whole fleet.
        script.set("ClearCache", "reject")
        result = await csms.sessions["SIM-00001"].call(call.ClearCache(), suppress=False)
        assert result.status == "Rejected"
    finally:
        await fleet.close()

    for session in csms.sessions.values():
        await asyncio.wait_for(session.closed.wait(), 1.0)
    assert not any(station.connected for station in fleet)


async def test_fleet_raises_when_the_csms_is_unreachable() -> None:
    # Bound but not listening: connecting is refused at once, and nobody else can take the port.
    with socket.socket() as closed_port:
        closed_port.bind(("127.0.0.1", 0))
        port = closed_port.getsockname()[1]
        with pytest.raises(OSError):
            await run_fleet(f"ws://127.0.0.1:{port}/ocpp", 2, 1, None, ready_timeout=1.0)


async def test_run_reconnects_and_boots_again(csms: FakeCsms[Csms16]) -> None:
    script = Script()
    script.set("ClearCache", "disconnect", times=1)
    station = SimulatedStation16("CP-RE", csms.url, script=script, heartbeat_interval=60)

    await sim_scenarios.check_reconnects(csms, station, call.ClearCache(), connector_id=2)


async def test_station_as_context_manager(csms: FakeCsms[Csms16]) -> None:
    station = SimulatedStation16("CP-CTX", csms.url, heartbeat_interval=60)

    await sim_scenarios.check_context_manager(csms, station)


def test_cli_parses_answers() -> None:
    args = sim_parser().parse_args(
        ["sim", "--url", "ws://h:1/ocpp", "--stations", "4", "--answer", "ReserveNow=occupied"]
    )

    assert args.func is sim_cli.run
    assert (args.stations, args.connectors, args.prefix) == (4, 2, "SIM-")
    script = sim_cli.build_script(args)
    assert script.behaviour("ReserveNow") == Behaviour.OCCUPIED
    assert script.behaviour("ClearCache") == Behaviour.ACCEPT


@pytest.mark.parametrize(
    "bad",
    [
        ["--answer", "ReserveNow=unlock_failed"],
        ["--answer", "ReserveNow"],
        ["--default-answer", "occupied"],
        ["--stations", "0"],
    ],
)
def test_cli_refuses_bad_arguments(bad: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        sim_parser().parse_args(["sim", "--url", "ws://h:1/ocpp", *bad])
    assert "error" in capsys.readouterr().err


async def test_cli_runs_a_fleet_until_stopped(csms: FakeCsms[Csms16]) -> None:
    args = sim_parser().parse_args(
        ["sim", "--url", csms.url, "--stations", "2", "--prefix", "CLI-", "--heartbeat", "60"]
    )
    stop = asyncio.Event()
    running = asyncio.create_task(sim_cli.run_async(args, stop))

    first = await csms.session("CLI-00000")
    second = await csms.session("CLI-00001")
    await second.wait_for("StatusNotification", connector_id=2)
    stop.set()
    await asyncio.wait_for(running, 1.0)

    await asyncio.wait_for(first.closed.wait(), 1.0)
    assert first.messages[0][0] == "BootNotification"
