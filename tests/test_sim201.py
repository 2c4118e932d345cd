"""The OCPP 2.0.1 station simulator, against a minimal CSMS over real sockets.

The CSMS side is the ocpp library's own v201 ChargePoint, so every frame the simulator sends
is also checked against the OCPP 2.0.1 JSON schemas.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ocpp.exceptions import NotImplementedError as OcppNotImplementedError
from ocpp.exceptions import OCPPError
from ocpp.routing import on
from ocpp.v201 import ChargePoint, call, call_result, datatypes, enums
from websockets.asyncio.server import ServerConnection

from chargegate.sim import Behaviour, Script, SimulatedStation201, run_fleet
from chargegate.sim import cli as sim_cli
from chargegate.sim.script import (
    CSMS_ACTIONS_201,
    PROTOCOL_BEHAVIOURS,
    STATUS_ANSWERS_201,
    status_for,
)

from .support import sim_scenarios
from .support.fake_csms import (
    QUIET_HEARTBEAT,
    FakeCsms,
    RecordingCsms,
    connect_fixture,  # noqa: F401  (the `connect` fixture)
    serving,
    sim_parser,
)

BLOCKED_TOKEN = "BLOCKED"


def in_minutes(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


def token(value: str = "TAG-1") -> datatypes.IdTokenType:
    return datatypes.IdTokenType(id_token=value, type=enums.IdTokenEnumType.central)


def component_variable(
    component: str,
    variable: str,
    evse_id: int | None = None,
    variable_instance: str | None = None,
) -> dict[str, Any]:
    evse = datatypes.EVSEType(id=evse_id) if evse_id is not None else None
    return {
        "component": datatypes.ComponentType(name=component, evse=evse),
        "variable": datatypes.VariableType(name=variable, instance=variable_instance),
    }


def get_data(component: str, variable: str, **options: Any) -> datatypes.GetVariableDataType:
    attribute_type = options.pop("attribute_type", None)
    return datatypes.GetVariableDataType(
        **component_variable(component, variable, **options), attribute_type=attribute_type
    )


def set_data(component: str, variable: str, value: str) -> datatypes.SetVariableDataType:
    return datatypes.SetVariableDataType(
        attribute_value=value, **component_variable(component, variable)
    )


def energy(event: dict[str, Any]) -> float:
    (meter_value,) = event["meter_value"]
    (sample,) = meter_value["sampled_value"]
    assert sample["measurand"] == "Energy.Active.Import.Register"
    assert sample["unit_of_measure"] == {"unit": "Wh"}
    value: float = sample["value"]
    return value


class Csms201(RecordingCsms, ChargePoint):
    """Server side of one OCPP 2.0.1 connection: records all, answers like a permissive CSMS
    (every idToken but BLOCKED_TOKEN accepted)."""

    RESULTS = call_result

    def __init__(self, station_id: str, connection: ServerConnection) -> None:
        ChargePoint.__init__(self, station_id, connection, response_timeout=0.5)
        RecordingCsms.__init__(self)

    def _token_info(self, id_token: dict[str, Any]) -> datatypes.IdTokenInfoType:
        status = (
            enums.AuthorizationStatusEnumType.blocked
            if id_token["id_token"] == BLOCKED_TOKEN
            else enums.AuthorizationStatusEnumType.accepted
        )
        return datatypes.IdTokenInfoType(status=status)

    @on(enums.Action.transaction_event)
    def on_transaction_event(self, **payload: Any) -> call_result.TransactionEvent:
        self._got(enums.Action.transaction_event, payload)
        if "id_token" not in payload:
            return call_result.TransactionEvent()
        return call_result.TransactionEvent(id_token_info=self._token_info(payload["id_token"]))

    @on(enums.Action.authorize)
    def on_authorize(self, **payload: Any) -> call_result.Authorize:
        self._got(enums.Action.authorize, payload)
        return call_result.Authorize(id_token_info=self._token_info(payload["id_token"]))


@pytest.fixture
async def csms() -> AsyncIterator[FakeCsms[Csms201]]:
    async with serving(FakeCsms(Csms201, SimulatedStation201, "CS-1")) as served:
        yield served


StationFactory = Callable[..., Awaitable[tuple[SimulatedStation201, Csms201]]]


# -- boot, statuses, heartbeats ---------------------------------------------------------------


async def test_boot_then_every_evse_reported_available(
    connect: StationFactory, csms: FakeCsms[Csms201]
) -> None:
    station, cp = await connect("CS-BOOT", evses=3)

    assert station.ready.is_set()
    assert csms.subprotocols["CS-BOOT"] == "ocpp2.0.1"
    name, boot = cp.messages[0]
    assert name == "BootNotification"
    assert boot["reason"] == "PowerUp"
    assert boot["charging_station"]["model"] == station.model
    assert boot["charging_station"]["vendor_name"] == station.vendor
    statuses = cp.of("StatusNotification")
    assert [(s["evse_id"], s["connector_id"], s["connector_status"]) for s in statuses] == [
        (e, 1, "Available") for e in (1, 2, 3)
    ]
    # The interval the CSMS announced becomes the station's OCPPCommCtrlr.HeartbeatInterval.
    assert station.device_model.get("OCPPCommCtrlr", "HeartbeatInterval") == "300"


async def test_heartbeats_at_the_overridden_interval(connect: StationFactory) -> None:
    _, cp = await connect(heartbeat_interval=0.05)

    await cp.wait_for("Heartbeat")
    await cp.wait_for("Heartbeat")


# -- every scripted status answer ---------------------------------------------------------------


async def _request_for(action: str, station: SimulatedStation201, cp: Csms201) -> Any:
    """A CALL of `action` that a willing station would accept, after any setup it needs."""
    if action == "RequestStartTransaction":
        return call.RequestStartTransaction(id_token=token(), remote_start_id=1, evse_id=1)
    if action == "RequestStopTransaction":
        transaction_id = await station.start_transaction(1, "T")
        return call.RequestStopTransaction(transaction_id=transaction_id)
    if action == "ReserveNow":
        return call.ReserveNow(id=1, expiry_date_time=in_minutes(10), id_token=token(), evse_id=1)
    if action == "CancelReservation":
        reserve = await _request_for("ReserveNow", station, cp)
        assert (await cp.call(reserve, suppress=False)).status == "Accepted"
        return call.CancelReservation(reservation_id=1)
    if action == "UnlockConnector":
        return call.UnlockConnector(evse_id=1, connector_id=1)
    if action == "Reset":
        return call.Reset(type=enums.ResetEnumType.immediate)
    if action == "GetVariables":
        return call.GetVariables([get_data("OCPPCommCtrlr", "HeartbeatInterval")])
    if action == "SetVariables":
        return call.SetVariables([set_data("OCPPCommCtrlr", "HeartbeatInterval", "120")])
    if action == "GetBaseReport":
        return call.GetBaseReport(request_id=1, report_base="FullInventory")
    if action == "ClearCache":
        return call.ClearCache()
    if action == "TriggerMessage":
        return call.TriggerMessage(requested_message=enums.MessageTriggerEnumType.heartbeat)
    raise AssertionError(action)


def _status(result: Any) -> str:
    """The status of a CALLRESULT; for Get/SetVariables, that of its only entry."""
    if isinstance(result, call_result.GetVariables):
        (entry,) = result.get_variable_result
        return str(entry["attribute_status"])
    if isinstance(result, call_result.SetVariables):
        (entry,) = result.set_variable_result
        return str(entry["attribute_status"])
    return str(result.status)


STATUS_CASES = [
    (action, behaviour.value, status)
    for action, answers in STATUS_ANSWERS_201.items()
    for behaviour, status in answers.items()
]


def test_every_handled_action_has_a_status_case() -> None:
    assert {action for action, _, _ in STATUS_CASES} == {
        "RequestStartTransaction",
        "RequestStopTransaction",
        "ReserveNow",
        "CancelReservation",
        "UnlockConnector",
        "Reset",
        "GetVariables",
        "SetVariables",
        "GetBaseReport",
        "ClearCache",
        "TriggerMessage",
    }


@pytest.mark.parametrize(("action", "behaviour", "expected"), STATUS_CASES)
async def test_each_scripted_behaviour_gives_its_status(
    connect: StationFactory, action: str, behaviour: str, expected: str
) -> None:
    station, cp = await connect(auto_transactions=False)
    request = await _request_for(action, station, cp)
    station.script.set(action, behaviour)

    result = await cp.call(request, suppress=False)

    assert _status(result) == expected
    assert station.received[-1][0] == action


@pytest.mark.parametrize(("behaviour", "error"), sim_scenarios.CALL_ERRORS)
@pytest.mark.parametrize("action", ["RequestStartTransaction", "GetVariables", "DataTransfer"])
async def test_scripted_call_errors(
    connect: StationFactory, action: str, behaviour: str, error: type[OCPPError]
) -> None:
    station, cp = await connect()
    request: Any = {
        "RequestStartTransaction": call.RequestStartTransaction(
            id_token=token(), remote_start_id=1
        ),
        "GetVariables": call.GetVariables([get_data("OCPPCommCtrlr", "HeartbeatInterval")]),
        "DataTransfer": call.DataTransfer(vendor_id="acme"),
    }[action]

    await sim_scenarios.check_call_error(station, cp, action, behaviour, error, request)


async def test_unscripted_unhandled_action_is_not_implemented(connect: StationFactory) -> None:
    station, cp = await connect()

    with pytest.raises(OcppNotImplementedError):
        await cp.call(call.DataTransfer(vendor_id="acme"), suppress=False)

    assert station.calls("DataTransfer") == [{"vendorId": "acme"}]


async def test_silent_drops_only_that_call(connect: StationFactory) -> None:
    station, cp = await connect()
    request = call.RequestStartTransaction(id_token=token(), remote_start_id=5)

    await sim_scenarios.check_silent_drops_only_that_call(
        station, cp, "RequestStartTransaction", request, call.ClearCache()
    )


async def test_scripted_behaviour_for_a_number_of_calls(connect: StationFactory) -> None:
    station, cp = await connect()
    station.script.set("ClearCache", "reject", times=2)

    answers = [(await cp.call(call.ClearCache(), suppress=False)).status for _ in range(3)]

    assert answers == ["Rejected", "Rejected", "Accepted"]


async def test_disconnect_closes_the_socket_without_answer(connect: StationFactory) -> None:
    station, cp = await connect()
    request = call.ReserveNow(id=3, expiry_date_time=in_minutes(10), id_token=token(), evse_id=1)

    await sim_scenarios.check_disconnect_without_answer(station, cp, "ReserveNow", request)


# -- remote start and stop -------------------------------------------------------------------


async def test_remote_start_then_stop_plays_a_whole_transaction(connect: StationFactory) -> None:
    station, cp = await connect(meter_wh_per_tick=400)
    since = cp.mark()

    started = await cp.call(
        call.RequestStartTransaction(id_token=token("TAG-A"), remote_start_id=42, evse_id=2),
        suppress=False,
    )
    assert started.status == "Accepted"
    start = await cp.wait_for("TransactionEvent", since, event_type="Started")
    await cp.wait_for("StatusNotification", since, connector_status="Occupied")

    info = start["transaction_info"]
    assert info["remote_start_id"] == 42
    assert start["trigger_reason"] == "RemoteStart"
    assert start["seq_no"] == 0
    assert start["id_token"] == {"id_token": "TAG-A", "type": "Central"}
    assert start["evse"] == {"id": 2, "connector_id": 1}
    assert "reservation_id" not in start
    assert energy(start) == 0
    transaction_id = info["transaction_id"]
    assert 0 < len(transaction_id) <= 36
    assert list(station.transactions) == [transaction_id]
    assert cp.index_of("TransactionEvent", event_type="Started") < cp.index_of(
        "StatusNotification", connector_status="Occupied", evse_id=2
    )

    since = cp.mark()
    stopped = await cp.call(call.RequestStopTransaction(transaction_id), suppress=False)
    assert stopped.status == "Accepted"
    end = await cp.wait_for("TransactionEvent", since, event_type="Ended")
    await cp.wait_for("StatusNotification", since, connector_status="Available", evse_id=2)

    assert end["transaction_info"]["transaction_id"] == transaction_id
    assert end["transaction_info"]["stopped_reason"] == "Remote"
    assert end["trigger_reason"] == "RemoteStop"
    assert end["seq_no"] == 1
    assert energy(end) == 400
    assert cp.index_of("TransactionEvent", since, event_type="Ended") < cp.index_of(
        "StatusNotification", since, connector_status="Available", evse_id=2
    )
    assert station.transactions == {}


async def test_remote_start_without_evse_takes_the_first_free_one(
    connect: StationFactory,
) -> None:
    station, cp = await connect()
    await station.start_transaction(1, "TAG-A")
    since = cp.mark()

    result = await cp.call(
        call.RequestStartTransaction(id_token=token("TAG-B"), remote_start_id=7), suppress=False
    )
    start = await cp.wait_for("TransactionEvent", since, event_type="Started")

    assert result.status == "Accepted"
    assert start["evse"]["id"] == 2
    assert start["transaction_info"]["remote_start_id"] == 7


async def test_remote_start_rejected_on_a_busy_evse(connect: StationFactory) -> None:
    station, cp = await connect()
    await station.start_transaction(1, "TAG-A")

    busy = await cp.call(
        call.RequestStartTransaction(id_token=token("TAG-B"), remote_start_id=1, evse_id=1),
        suppress=False,
    )
    unknown = await cp.call(
        call.RequestStartTransaction(id_token=token("TAG-B"), remote_start_id=2, evse_id=9),
        suppress=False,
    )

    assert (busy.status, unknown.status) == ("Rejected", "Rejected")
    assert len(station.transactions) == 1


async def test_remote_stop_of_an_unknown_transaction_is_rejected(connect: StationFactory) -> None:
    _, cp = await connect()

    result = await cp.call(call.RequestStopTransaction("no-such-transaction"), suppress=False)

    assert result.status == "Rejected"
    assert cp.of("TransactionEvent") == []


async def test_start_refused_by_csms_is_ended_deauthorized(connect: StationFactory) -> None:
    station, cp = await connect()
    since = cp.mark()

    await cp.call(
        call.RequestStartTransaction(id_token=token(BLOCKED_TOKEN), remote_start_id=3),
        suppress=False,
    )
    end = await cp.wait_for("TransactionEvent", since, event_type="Ended")
    await cp.wait_for("StatusNotification", since, evse_id=1, connector_status="Available")

    assert end["transaction_info"]["stopped_reason"] == "DeAuthorized"
    assert end["trigger_reason"] == "Deauthorized"
    assert station.transactions == {}
    assert "Occupied" not in {s["connector_status"] for s in cp.of("StatusNotification", since)}


async def test_authorize_remote_start_authorizes_before_starting(
    connect: StationFactory,
) -> None:
    station, cp = await connect()
    changed = await cp.call(
        call.SetVariables([set_data("AuthCtrlr", "AuthorizeRemoteStart", "true")]),
        suppress=False,
    )
    assert changed.set_variable_result[0]["attribute_status"] == "Accepted"
    since = cp.mark()

    await cp.call(
        call.RequestStartTransaction(id_token=token("TAG-A"), remote_start_id=4), suppress=False
    )
    await cp.wait_for("TransactionEvent", since, event_type="Started")

    assert cp.index_of("Authorize") < cp.index_of("TransactionEvent", event_type="Started")

    # A token the CSMS refuses never starts a transaction.
    since = cp.mark()
    await cp.call(
        call.RequestStartTransaction(id_token=token(BLOCKED_TOKEN), remote_start_id=5),
        suppress=False,
    )
    await cp.wait_for("Authorize", since)
    await asyncio.sleep(0.05)
    assert cp.of("TransactionEvent", since) == []
    assert len(station.transactions) == 1


# -- unlock and reset ---------------------------------------------------------------------------


async def test_unlock_during_a_transaction_is_refused_and_keeps_it(
    connect: StationFactory,
) -> None:
    station, cp = await connect()
    transaction_id = await station.start_transaction(2, "TAG-A")

    busy = await cp.call(call.UnlockConnector(evse_id=2, connector_id=1), suppress=False)
    free = await cp.call(call.UnlockConnector(evse_id=1, connector_id=1), suppress=False)

    assert busy.status == "OngoingAuthorizedTransaction"
    assert free.status == "Unlocked"
    assert list(station.transactions) == [transaction_id]
    assert cp.of("TransactionEvent", since=0)[-1]["event_type"] == "Started"


@pytest.mark.parametrize(("evse_id", "connector_id"), [(9, 1), (1, 2)])
async def test_unlock_of_an_unknown_connector(
    connect: StationFactory, evse_id: int, connector_id: int
) -> None:
    _, cp = await connect()

    result = await cp.call(
        call.UnlockConnector(evse_id=evse_id, connector_id=connector_id), suppress=False
    )

    assert result.status == "UnknownConnector"


async def test_immediate_reset_ends_transactions_and_boots_again(
    connect: StationFactory,
) -> None:
    station, cp = await connect()
    transaction_id = await station.start_transaction(1, "TAG-A")
    since = cp.mark()

    result = await cp.call(call.Reset(type="Immediate"), suppress=False)
    end = await cp.wait_for("TransactionEvent", since, event_type="Ended")
    boot = await cp.wait_for("BootNotification", since)
    await cp.wait_for("StatusNotification", since, evse_id=2)

    assert result.status == "Accepted"
    assert end["transaction_info"]["transaction_id"] == transaction_id
    assert end["transaction_info"]["stopped_reason"] == "ImmediateReset"
    assert end["trigger_reason"] == "ResetCommand"
    assert boot["reason"] == "RemoteReset"
    assert station.transactions == {}
    assert station.evse_status == {1: "Available", 2: "Available"}


async def test_on_idle_reset_waits_for_the_transaction(connect: StationFactory) -> None:
    station, cp = await connect()
    transaction_id = await station.start_transaction(1, "TAG-A")
    since = cp.mark()

    result = await cp.call(call.Reset(type="OnIdle"), suppress=False)
    await asyncio.sleep(0.05)
    assert result.status == "Scheduled"
    assert cp.of("BootNotification", since) == []
    assert list(station.transactions) == [transaction_id]

    await station.stop_transaction(transaction_id)
    boot = await cp.wait_for("BootNotification", since)

    assert boot["reason"] == "RemoteReset"


async def test_on_idle_reset_of_an_idle_station_is_accepted(connect: StationFactory) -> None:
    _, cp = await connect()
    since = cp.mark()

    result = await cp.call(call.Reset(type="OnIdle"), suppress=False)
    await cp.wait_for("BootNotification", since)

    assert result.status == "Accepted"


# -- device model -----------------------------------------------------------------------------


async def test_get_variables_reports_unknown_components_and_variables(
    connect: StationFactory,
) -> None:
    _, cp = await connect()

    result = await cp.call(
        call.GetVariables(
            [
                get_data("OCPPCommCtrlr", "HeartbeatInterval"),
                get_data("NoSuchCtrlr", "HeartbeatInterval"),
                get_data("OCPPCommCtrlr", "NoSuchVariable"),
                get_data("OCPPCommCtrlr", "MessageTimeout", variable_instance="Default"),
                get_data("EVSE", "AvailabilityState", evse_id=2),
                get_data("EVSE", "AvailabilityState", evse_id=9),
                get_data("TxCtrlr", "EVConnectionTimeOut", attribute_type="Target"),
            ]
        ),
        suppress=False,
    )

    answers = [
        (
            r["component"]["name"],
            r["variable"]["name"],
            r["attribute_status"],
            r.get("attribute_value"),
        )
        for r in result.get_variable_result
    ]
    assert answers == [
        ("OCPPCommCtrlr", "HeartbeatInterval", "Accepted", "300"),
        ("NoSuchCtrlr", "HeartbeatInterval", "UnknownComponent", None),
        ("OCPPCommCtrlr", "NoSuchVariable", "UnknownVariable", None),
        ("OCPPCommCtrlr", "MessageTimeout", "Accepted", "30"),
        ("EVSE", "AvailabilityState", "Accepted", "Available"),
        ("EVSE", "AvailabilityState", "UnknownComponent", None),
        ("TxCtrlr", "EVConnectionTimeOut", "NotSupportedAttributeType", None),
    ]
    # The request's component, evse included, comes back as it was asked.
    assert result.get_variable_result[4]["component"] == {"name": "EVSE", "evse": {"id": 2}}


async def test_get_variables_follows_the_evse_status(connect: StationFactory) -> None:
    station, cp = await connect()
    await station.send_status(1, "Unavailable")

    result = await cp.call(
        call.GetVariables([get_data("EVSE", "AvailabilityState", evse_id=1)]), suppress=False
    )

    assert result.get_variable_result[0]["attribute_value"] == "Unavailable"


async def test_set_variables_changes_writable_variables_only(connect: StationFactory) -> None:
    station, cp = await connect()

    result = await cp.call(
        call.SetVariables(
            [
                set_data("TxCtrlr", "EVConnectionTimeOut", "90"),
                set_data("ReservationCtrlr", "Enabled", "false"),
                set_data("TxCtrlr", "NoSuchVariable", "1"),
                set_data("NoSuchCtrlr", "Enabled", "1"),
                set_data("OCPPCommCtrlr", "HeartbeatInterval", "soon"),
            ]
        ),
        suppress=False,
    )

    assert [r["attribute_status"] for r in result.set_variable_result] == [
        "Accepted",
        "Rejected",
        "UnknownVariable",
        "UnknownComponent",
        "Rejected",
    ]
    assert station.device_model.get("TxCtrlr", "EVConnectionTimeOut") == "90"
    assert station.device_model.get("ReservationCtrlr", "Enabled") == "true"
    assert station.device_model.get("OCPPCommCtrlr", "HeartbeatInterval") == "300"


async def test_set_variables_reboot_required_still_stores(connect: StationFactory) -> None:
    station, cp = await connect()
    station.script.set("SetVariables", "reboot_required")

    result = await cp.call(
        call.SetVariables(
            [
                set_data("TxCtrlr", "EVConnectionTimeOut", "45"),
                set_data("ChargingStation", "Model", "Other"),
            ]
        ),
        suppress=False,
    )

    assert [r["attribute_status"] for r in result.set_variable_result] == [
        "RebootRequired",
        "Rejected",
    ]
    assert station.device_model.get("TxCtrlr", "EVConnectionTimeOut") == "45"


async def test_get_base_report_sends_the_device_model_in_notify_reports(
    connect: StationFactory,
) -> None:
    station, cp = await connect()
    since = cp.mark()

    result = await cp.call(
        call.GetBaseReport(request_id=77, report_base="FullInventory"), suppress=False
    )
    reports = [await cp.wait_for("NotifyReport", since)]
    while reports[-1].get("tbc"):
        reports.append(await cp.wait_for("NotifyReport", since))

    assert result.status == "Accepted"
    per_message = int(
        station.device_model.get(
            "DeviceDataCtrlr", "ItemsPerMessage", variable_instance="GetReport"
        )
        or 0
    )
    assert len(station.device_model) > per_message  # so that the report needs several messages
    assert [r["seq_no"] for r in reports] == list(range(len(reports)))
    assert [r["tbc"] for r in reports] == [True] * (len(reports) - 1) + [False]
    assert {r["request_id"] for r in reports} == {77}
    entries = [entry for r in reports for entry in r["report_data"]]
    assert all(len(r["report_data"]) <= per_message for r in reports)
    assert len(entries) == len(station.device_model)
    by_name = {
        (e["component"]["name"], e["variable"]["name"], e["component"].get("evse", {}).get("id")): e
        for e in entries
    }
    heartbeat = by_name[("OCPPCommCtrlr", "HeartbeatInterval", None)]
    assert heartbeat["variable_attribute"] == [
        {"type": "Actual", "value": "300", "mutability": "ReadWrite"}
    ]
    assert heartbeat["variable_characteristics"]["data_type"] == "integer"
    assert ("EVSE", "AvailabilityState", 2) in by_name
    # Nothing more follows the last part.
    await asyncio.sleep(0.05)
    assert len(cp.of("NotifyReport", since)) == len(reports)


async def test_configuration_inventory_reports_writable_variables_only(
    connect: StationFactory,
) -> None:
    _, cp = await connect()
    since = cp.mark()

    await cp.call(
        call.GetBaseReport(request_id=3, report_base="ConfigurationInventory"), suppress=False
    )
    reports = [await cp.wait_for("NotifyReport", since)]
    while reports[-1].get("tbc"):
        reports.append(await cp.wait_for("NotifyReport", since))

    mutabilities = {
        e["variable_attribute"][0]["mutability"] for r in reports for e in r["report_data"]
    }
    assert mutabilities == {"ReadWrite"}


async def test_rejected_base_report_sends_nothing(connect: StationFactory) -> None:
    station, cp = await connect()
    station.script.set("GetBaseReport", "reject")

    result = await cp.call(
        call.GetBaseReport(request_id=1, report_base="FullInventory"), suppress=False
    )
    await asyncio.sleep(0.05)

    assert result.status == "Rejected"
    assert cp.of("NotifyReport") == []


# -- reservations -----------------------------------------------------------------------------


async def test_reserve_now_with_same_id_replaces_the_reservation(connect: StationFactory) -> None:
    station, cp = await connect()

    first = await cp.call(
        call.ReserveNow(id=7, expiry_date_time=in_minutes(10), id_token=token("A"), evse_id=1),
        suppress=False,
    )
    await cp.wait_for("StatusNotification", evse_id=1, connector_status="Reserved")
    since = cp.mark()
    second = await cp.call(
        call.ReserveNow(id=7, expiry_date_time=in_minutes(20), id_token=token("B"), evse_id=2),
        suppress=False,
    )
    await cp.wait_for("StatusNotification", since, evse_id=2, connector_status="Reserved")
    await cp.wait_for("StatusNotification", since, evse_id=1, connector_status="Available")

    assert (first.status, second.status) == ("Accepted", "Accepted")
    assert list(station.reservations) == [7]
    assert station.reservations[7].evse_id == 2
    assert station.reservations[7].id_token.id_token == "B"
    # A replaced reservation is not reported as removed: the CSMS asked for it.
    assert cp.of("ReservationStatusUpdate") == []

    # The replacement is what a start for B uses, and using it ends it.
    since = cp.mark()
    await cp.call(
        call.RequestStartTransaction(id_token=token("B"), remote_start_id=8), suppress=False
    )
    start = await cp.wait_for("TransactionEvent", since, event_type="Started")
    await cp.wait_for("StatusNotification", since, evse_id=2, connector_status="Occupied")
    assert (start["evse"]["id"], start["reservation_id"]) == (2, 7)
    assert station.reservations == {}


async def test_a_reserved_evse_refuses_other_tokens(connect: StationFactory) -> None:
    station, cp = await connect(evses=1)
    await cp.call(
        call.ReserveNow(id=1, expiry_date_time=in_minutes(10), id_token=token("A"), evse_id=1),
        suppress=False,
    )

    other = await cp.call(
        call.RequestStartTransaction(id_token=token("B"), remote_start_id=1, evse_id=1),
        suppress=False,
    )
    again = await cp.call(
        call.ReserveNow(id=2, expiry_date_time=in_minutes(10), id_token=token("B"), evse_id=1),
        suppress=False,
    )

    assert (other.status, again.status) == ("Rejected", "Occupied")
    assert list(station.reservations) == [1]


async def test_remove_reservation_reports_removed(connect: StationFactory) -> None:
    station, cp = await connect()
    await cp.call(
        call.ReserveNow(id=5, expiry_date_time=in_minutes(10), id_token=token(), evse_id=2),
        suppress=False,
    )
    await cp.wait_for("StatusNotification", evse_id=2, connector_status="Reserved")
    since = cp.mark()

    await station.remove_reservation(5)
    update = await cp.wait_for("ReservationStatusUpdate", since)
    await cp.wait_for("StatusNotification", since, evse_id=2, connector_status="Available")

    assert update == {"reservation_id": 5, "reservation_update_status": "Removed"}
    assert station.reservations == {}
    with pytest.raises(ValueError, match="no reservation 5"):
        await station.remove_reservation(5)


async def test_reservation_expires_with_a_status_update(connect: StationFactory) -> None:
    station, cp = await connect()
    expiry = (datetime.now(UTC) + timedelta(seconds=0.2)).isoformat()
    await cp.call(
        call.ReserveNow(id=6, expiry_date_time=expiry, id_token=token(), evse_id=1),
        suppress=False,
    )

    update = await cp.wait_for("ReservationStatusUpdate")
    await cp.wait_for("StatusNotification", evse_id=1, connector_status="Available")

    assert update == {"reservation_id": 6, "reservation_update_status": "Expired"}
    assert station.reservations == {}


async def test_cancel_reservation_frees_the_evse(connect: StationFactory) -> None:
    station, cp = await connect()
    await cp.call(
        call.ReserveNow(id=5, expiry_date_time=in_minutes(5), id_token=token(), evse_id=2),
        suppress=False,
    )
    await cp.wait_for("StatusNotification", evse_id=2, connector_status="Reserved")
    since = cp.mark()

    result = await cp.call(call.CancelReservation(reservation_id=5), suppress=False)
    await cp.wait_for("StatusNotification", since, evse_id=2, connector_status="Available")
    unknown = await cp.call(call.CancelReservation(reservation_id=5), suppress=False)

    assert (result.status, unknown.status) == ("Accepted", "Rejected")
    assert station.reservations == {}
    assert cp.of("ReservationStatusUpdate") == []


async def test_reserve_now_on_a_charging_evse_is_occupied(connect: StationFactory) -> None:
    station, cp = await connect()
    await station.start_transaction(1, "TAG-A")

    result = await cp.call(
        call.ReserveNow(id=9, expiry_date_time=in_minutes(5), id_token=token(), evse_id=1),
        suppress=False,
    )

    assert result.status == "Occupied"
    assert station.reservations == {}


async def test_reserve_now_without_evse(connect: StationFactory) -> None:
    station, cp = await connect()
    await station.start_transaction(1, "TAG-A")
    since = cp.mark()

    first = await cp.call(
        call.ReserveNow(id=1, expiry_date_time=in_minutes(5), id_token=token("B")),
        suppress=False,
    )
    # EVSE 2 is the only free one and the first reservation counts on it.
    second = await cp.call(
        call.ReserveNow(id=2, expiry_date_time=in_minutes(5), id_token=token("C")),
        suppress=False,
    )
    await asyncio.sleep(0.05)

    assert (first.status, second.status) == ("Accepted", "Occupied")
    assert station.reservations[1].evse_id is None
    assert cp.of("StatusNotification", since) == []

    # The token's transaction on any EVSE uses it.
    transaction_id = await station.start_transaction(2, "B")
    assert station.transactions[transaction_id].reservation_id == 1
    assert station.reservations == {}


# -- trigger message --------------------------------------------------------------------------


async def test_trigger_message_sends_the_requested_message(connect: StationFactory) -> None:
    station, cp = await connect()
    transaction_id = await station.start_transaction(1, "TAG-A")
    since = cp.mark()

    status = await cp.call(
        call.TriggerMessage(requested_message="StatusNotification", evse=datatypes.EVSEType(id=2)),
        suppress=False,
    )
    meter = await cp.call(call.TriggerMessage(requested_message="MeterValues"), suppress=False)
    event = await cp.call(call.TriggerMessage(requested_message="TransactionEvent"), suppress=False)
    boot = await cp.call(call.TriggerMessage(requested_message="BootNotification"), False)
    log = await cp.call(call.TriggerMessage(requested_message="LogStatusNotification"), False)

    assert (status.status, meter.status, event.status) == ("Accepted",) * 3
    assert boot.status == "Rejected"  # F06.FR.17: it is already accepted
    assert log.status == "NotImplemented"
    notification = await cp.wait_for("StatusNotification", since)
    assert notification["evse_id"] == 2
    meter_values = [await cp.wait_for("MeterValues", since) for _ in (1, 2)]
    assert [m["evse_id"] for m in meter_values] == [1, 2]
    updated = await cp.wait_for("TransactionEvent", since, event_type="Updated")
    assert updated["trigger_reason"] == "Trigger"
    assert updated["transaction_info"]["transaction_id"] == transaction_id
    assert cp.of("BootNotification", since) == []


# -- helpers tests call directly --------------------------------------------------------------


async def test_wait_for_call_returns_each_call_once(connect: StationFactory) -> None:
    station, cp = await connect(auto_transactions=False)

    await cp.call(
        call.RequestStartTransaction(id_token=token("X"), remote_start_id=1, evse_id=2), False
    )
    await cp.call(call.RequestStartTransaction(id_token=token("Y"), remote_start_id=2), False)

    assert await station.wait_for_call("RequestStartTransaction", 0.5) == {
        "idToken": {"idToken": "X", "type": "Central"},
        "remoteStartId": 1,
        "evseId": 2,
    }
    assert (await station.wait_for_call("RequestStartTransaction", 0.5))["remoteStartId"] == 2
    with pytest.raises(TimeoutError):
        await station.wait_for_call("RequestStartTransaction", 0.05)
    assert station.transactions == {}  # auto_transactions=False only answers

    # A call arriving while waiting wakes the waiter.
    waiting = asyncio.create_task(station.wait_for_call("ClearCache", 1.0))
    await asyncio.sleep(0)
    await cp.call(call.ClearCache(), suppress=False)
    assert await waiting == {}


async def test_direct_transaction_methods(connect: StationFactory) -> None:
    station, cp = await connect(auto_transactions=False)

    assert await station.authorize("TAG-A") == "Accepted"
    assert await station.authorize(BLOCKED_TOKEN) == "Blocked"
    await station.send_status(1, "Occupied")
    transaction_id = await station.start_transaction(1, token("TAG-A"), remote_start_id=12)
    await station.send_meter_values(transaction_id, 1500)
    await station.stop_transaction(transaction_id)

    start, update, end = cp.of("TransactionEvent")
    assert [e["seq_no"] for e in (start, update, end)] == [0, 1, 2]
    assert {e["transaction_info"]["transaction_id"] for e in (start, update, end)} == {
        transaction_id
    }
    assert start["transaction_info"]["remote_start_id"] == 12
    assert (update["event_type"], update["trigger_reason"], energy(update)) == (
        "Updated",
        "MeterValuePeriodic",
        1500,
    )
    assert (end["transaction_info"]["stopped_reason"], end["trigger_reason"]) == (
        "Local",
        "StopAuthorized",
    )
    assert energy(end) == 1500 + station.meter_wh_per_tick
    assert cp.of("Authorize")[0]["id_token"] == {"id_token": "TAG-A", "type": "ISO14443"}
    assert cp.index_of("StatusNotification", connector_status="Occupied", evse_id=1) >= 0
    with pytest.raises(ValueError, match="no transaction"):
        await station.stop_transaction(transaction_id)
    with pytest.raises(ValueError, match="no EVSE 3"):
        await station.start_transaction(3, "TAG-A")


async def test_periodic_meter_values_during_a_transaction(connect: StationFactory) -> None:
    station, cp = await connect(meter_interval=0.05, meter_wh_per_tick=100)
    transaction_id = await station.start_transaction(1, "TAG-A")

    first = await cp.wait_for("TransactionEvent", event_type="Updated")
    second = await cp.wait_for("TransactionEvent", event_type="Updated")

    assert [energy(first), energy(second)] == [100, 200]
    assert [first["seq_no"], second["seq_no"]] == [1, 2]
    assert first["transaction_info"]["transaction_id"] == transaction_id


# -- script -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "behaviour", "message"),
    [
        ("RemoteStartTransaction", "accept", "not an OCPP 2.0.1 action"),
        ("GetConfiguration", "accept", "unknown action"),
        ("UnlockConnector", "not_supported", "makes no sense for UnlockConnector"),
        ("Reset", "occupied", "makes no sense"),
        ("DataTransfer", "accept", "makes no sense"),
        ("BootNotification", "silent", "unknown action 'BootNotification'"),
    ],
)
def test_script_201_rejects_pairs_that_make_no_sense(
    action: str, behaviour: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Script(version="2.0.1").set(action, behaviour)


@pytest.mark.parametrize(
    ("action", "behaviour"),
    [
        ("UnlockConnector", "ongoing_transaction"),
        ("UnlockConnector", "unknown_connector"),
        ("Reset", "scheduled"),
        ("RequestStartTransaction", "accept"),
    ],
)
def test_script_16_keeps_refusing_201_only_answers(action: str, behaviour: str) -> None:
    with pytest.raises(ValueError):
        Script().set(action, behaviour)
    Script(version="2.0.1").set(action, behaviour)


def test_script_201_default_reject_means_the_negative_answer() -> None:
    script = Script(default="reject", version="2.0.1")

    assert script.version == "2.0.1"
    assert script.behaviour("RequestStopTransaction") == Behaviour.REJECT
    assert script.behaviour("UnlockConnector") == Behaviour.UNLOCK_FAILED
    assert script.behaviour("SetVariables") == Behaviour.REJECT


def test_every_allowed_201_pair_has_an_answer() -> None:
    script = Script(version="2.0.1")
    for action in CSMS_ACTIONS_201:
        for behaviour in Behaviour:
            try:
                script.set(action, behaviour)
            except ValueError:
                continue
            if action in STATUS_ANSWERS_201 and behaviour not in PROTOCOL_BEHAVIOURS:
                assert status_for(action, behaviour, "2.0.1")


def test_script_versions_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown OCPP version"):
        Script(version="3.0")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"script is for OCPP 1\.6"):
        SimulatedStation201("CS-X", "ws://127.0.0.1:1/ocpp", script=Script())
    with pytest.raises(ValueError, match="at least one EVSE"):
        SimulatedStation201("CS-X", "ws://127.0.0.1:1/ocpp", evses=0)
    assert SimulatedStation201("CS-X", "ws://127.0.0.1:1/ocpp").script.version == "2.0.1"


# -- fleet and command line -------------------------------------------------------------------


async def test_fleet_of_201_stations(csms: FakeCsms[Csms201]) -> None:
    script = Script(version="2.0.1")
    fleet = await run_fleet(
        csms.url, 2, 3, script, heartbeat_interval=QUIET_HEARTBEAT, ocpp="2.0.1"
    )
    try:
        assert all(isinstance(station, SimulatedStation201) for station in fleet)
        assert sorted(csms.subprotocols.items()) == [
            ("SIM-00000", "ocpp2.0.1"),
            ("SIM-00001", "ocpp2.0.1"),
        ]
        session = csms.sessions["SIM-00001"]
        await session.wait_for("StatusNotification", evse_id=3)
        script.set("ClearCache", "reject")
        result = await session.call(call.ClearCache(), suppress=False)
        assert result.status == "Rejected"
    finally:
        await fleet.close()
    assert not any(station.connected for station in fleet)


async def test_fleet_refuses_a_script_of_the_other_version() -> None:
    with pytest.raises(ValueError, match=r"needs an OCPP 2\.0\.1 script"):
        await run_fleet("ws://127.0.0.1:1/ocpp", 1, 1, Script(), ocpp="2.0.1")


async def test_run_reconnects_and_boots_again(csms: FakeCsms[Csms201]) -> None:
    script = Script(version="2.0.1")
    script.set("ClearCache", "disconnect", times=1)
    station = SimulatedStation201("CS-RE", csms.url, script=script, heartbeat_interval=60)

    await sim_scenarios.check_reconnects(csms, station, call.ClearCache(), evse_id=2)


async def test_station_as_context_manager(csms: FakeCsms[Csms201]) -> None:
    station = SimulatedStation201("CS-CTX", csms.url, heartbeat_interval=60)

    await sim_scenarios.check_context_manager(csms, station)


def test_cli_parses_201_answers() -> None:
    args = sim_parser().parse_args(
        ["sim", "--url", "ws://h:1/ocpp", "--ocpp", "2.0.1", "--answer", "Reset=scheduled"]
    )

    script = sim_cli.build_script(args)
    assert script.version == "2.0.1"
    assert script.behaviour("Reset") == Behaviour.SCHEDULED
    assert sim_parser().parse_args(["sim", "--url", "ws://h:1/ocpp"]).ocpp == "1.6"


def test_cli_refuses_an_answer_of_the_other_version(capsys: pytest.CaptureFixture[str]) -> None:
    args = sim_parser().parse_args(["sim", "--url", "ws://h:1/ocpp", "--answer", "Reset=scheduled"])

    assert sim_cli.run(args) == 2
    assert "makes no sense for Reset" in capsys.readouterr().err


async def test_cli_runs_a_201_fleet_until_stopped(csms: FakeCsms[Csms201]) -> None:
    args = sim_parser().parse_args(
        ["sim", "--url", csms.url, "--ocpp", "2.0.1", "--connectors", "1", "--heartbeat", "60"]
    )
    stop = asyncio.Event()
    running = asyncio.create_task(sim_cli.run_async(args, stop))

    session = await csms.session("SIM-00000")
    await session.wait_for("StatusNotification", evse_id=1)
    stop.set()
    await asyncio.wait_for(running, 1.0)

    await asyncio.wait_for(session.closed.wait(), 1.0)
    assert csms.subprotocols["SIM-00000"] == "ocpp2.0.1"
    assert [p["evse_id"] for p in session.of("StatusNotification")] == [1]
