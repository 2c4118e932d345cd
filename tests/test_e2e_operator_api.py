"""Operator remote-commands API against simulated stations over real sockets."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from chargegate.domain.clock import parse_datetime

from .conftest import Gateway, StationFactory
from .support.operator import OperatorClient

SYNC = "/remote_commands/synchronous"
ASYNC = "/remote_commands/asynchronous"


@pytest.fixture
async def operator(gateway: Gateway) -> OperatorClient:
    return OperatorClient(gateway.base_url, await gateway.state.operator_keys.add("ops"))


async def _wait_status(
    operator: OperatorClient, path: str, wanted: set[str], seconds: float = 10
) -> dict:
    for _ in range(int(seconds / 0.05)):
        record = (await operator.get(path)).json()
        if record["status"] in wanted:
            return record
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} stayed {record['status']}, wanted {wanted}")


async def test_get_configuration_all_some_unknown_and_stored_while_offline(
    operator: OperatorClient, stations: StationFactory
) -> None:
    station = await stations("CP-1")
    everything = await operator.post(f"{SYNC}/CP-1/get_configuration", {})
    assert everything.status_code == 200, everything.text
    keys = {k["key"]: k for k in everything.json()["configurationKeys"]}
    assert "HeartbeatInterval" in keys and isinstance(keys["HeartbeatInterval"]["readonly"], bool)
    assert station.calls("GetConfiguration")[0] == {}

    some = await operator.post(
        f"{SYNC}/CP-1/get_configuration", {"keys": ["HeartbeatInterval", "NoSuchKey"]}
    )
    body = some.json()
    assert [k["key"] for k in body["configurationKeys"]] == ["HeartbeatInterval"]
    assert body["unknownKeys"] == ["NoSuchKey"]
    assert body["status"] == "ACCEPTED"
    assert "message_id=" in body["communicationLog"]

    await station.close()
    stored = await operator.get(f"{SYNC}/CP-1/get_configuration")
    assert stored.status_code == 200
    assert {k["key"] for k in stored.json()["configurationKeys"]} == set(keys)
    offline = await operator.post(f"{SYNC}/CP-1/get_configuration", {})
    assert offline.status_code == 409 and "offline" in offline.json()["message"]


async def test_change_configurations_one_call_per_key_with_each_status(
    operator: OperatorClient, stations: StationFactory
) -> None:
    station = await stations("CP-1")
    config = (await operator.post(f"{SYNC}/CP-1/get_configuration", {})).json()
    read_only = next(k["key"] for k in config["configurationKeys"] if k["readonly"])
    response = await operator.post(
        f"{SYNC}/CP-1/change_configurations",
        {
            "configurations": [
                {"key": "HeartbeatInterval", "value": "120"},
                {"key": read_only, "value": "x"},
                {"key": "NoSuchKey", "value": "1"},
            ]
        },
    )
    assert response.status_code == 200, response.text
    statuses = [(r["key"], r["status"]) for r in response.json()["results"]]
    assert statuses == [
        ("HeartbeatInterval", "Accepted"),
        (read_only, "Rejected"),
        ("NoSuchKey", "NotSupported"),
    ]
    assert [c["key"] for c in station.calls("ChangeConfiguration")] == [
        "HeartbeatInterval",
        read_only,
        "NoSuchKey",
    ]
    station.script.set("ChangeConfiguration", "reboot_required")
    reboot = await operator.post(
        f"{SYNC}/CP-1/change_configurations",
        {"configurations": [{"key": "HeartbeatInterval", "value": "60"}]},
    )
    assert reboot.json()["results"][0]["status"] == "RebootRequired"


@pytest.mark.parametrize(("behaviour", "status"), [("accept", "Accepted"), ("reject", "Rejected")])
async def test_reset(
    operator: OperatorClient, stations: StationFactory, behaviour: str, status: str
) -> None:
    station = await stations("CP-1", auto_transactions=False)
    station.script.set("Reset", behaviour)
    response = await operator.post(f"{SYNC}/CP-1/reset", {"type": "Hard"})
    assert response.status_code == 200
    assert response.json()["stationStatus"] == status
    assert station.calls("Reset") == [{"type": "Hard"}]
    bad = await operator.post(f"{SYNC}/CP-1/reset", {"type": "Sideways"})
    assert bad.status_code == 422


@pytest.mark.parametrize(
    ("behaviour", "status"),
    [("accept", "Unlocked"), ("unlock_failed", "UnlockFailed"), ("not_supported", "NotSupported")],
)
async def test_unlock_connector_by_uuid(
    operator: OperatorClient, stations: StationFactory, behaviour: str, status: str
) -> None:
    station = await stations("CP-1")
    station.script.set("UnlockConnector", behaviour)
    uuid = await operator.connector_uuid("CP-1", 2)
    response = await operator.post(f"{SYNC}/CP-1/unlock_connector/{uuid}")
    assert response.status_code == 200
    assert response.json()["stationStatus"] == status
    assert station.calls("UnlockConnector") == [{"connectorId": 2}]
    assert (await operator.post(f"{SYNC}/CP-1/unlock_connector/nope")).status_code == 404


async def test_silent_station_is_504_and_recorded_as_timed_out(
    operator: OperatorClient, stations: StationFactory
) -> None:
    station = await stations("CP-1")
    station.script.set("Reset", "silent")
    response = await operator.post(f"{SYNC}/CP-1/reset", {"type": "Soft"})
    assert response.status_code == 504
    record = (await operator.get(response.json()["record"])).json()
    assert record["status"] == "TIMEOUT"
    assert record["ocppMessageIds"]


async def test_call_error_is_502_with_the_station_words(
    operator: OperatorClient, stations: StationFactory
) -> None:
    station = await stations("CP-1")
    station.script.set("Reset", "call_error")
    response = await operator.post(f"{SYNC}/CP-1/reset", {"type": "Soft"})
    assert response.status_code == 502
    assert "InternalError" in response.json()["message"]


async def test_unknown_station_is_404(operator: OperatorClient) -> None:
    response = await operator.post(f"{SYNC}/NOPE/reset", {"type": "Soft"})
    assert response.status_code == 404 and "NOPE" in response.json()["message"]


async def test_parallel_cap_11th_is_429_and_slots_free_after_timeouts_and_errors(
    operator: OperatorClient, gateway: Gateway, stations: StationFactory
) -> None:
    silent = [await stations(f"S-{i}") for i in range(10)]
    for station in silent:
        station.script.set("Reset", "silent")
    await stations("FREE")
    in_flight = [
        asyncio.create_task(operator.post(f"{SYNC}/{s.id}/reset", {"type": "Soft"})) for s in silent
    ]
    for _ in range(100):
        if gateway.state.remote_commands._cap.in_flight == 10:
            break
        await asyncio.sleep(0.02)
    eleventh = await operator.post(f"{SYNC}/FREE/reset", {"type": "Soft"})
    assert eleventh.status_code == 429
    assert eleventh.headers["Retry-After"]
    assert "10" in eleventh.json()["message"]
    async_too = await operator.post(f"{ASYNC}/FREE/clear_cache")
    assert async_too.status_code == 429
    assert all(r.status_code == 504 for r in await asyncio.gather(*in_flight))
    after = await operator.post(f"{SYNC}/FREE/reset", {"type": "Soft"})
    assert after.status_code == 200
    silent[0].script.set("Reset", "call_error")
    assert (await operator.post(f"{SYNC}/S-0/reset", {"type": "Soft"})).status_code == 502
    assert gateway.state.remote_commands._cap.in_flight == 0


async def test_remote_start_attempt_succeeds_with_default_valid_until(
    operator: OperatorClient, stations: StationFactory
) -> None:
    await stations("CP-1")
    before = datetime.now(UTC)
    created = await operator.post(
        f"{ASYNC}/remote_start_attempt", {"cpId": "CP-1", "connectorId": 2, "idTag": "TAG1"}
    )
    assert created.status_code == 202, created.text
    attempt = created.json()
    valid_until = parse_datetime(attempt["validUntil"])
    assert before + timedelta(minutes=10) - timedelta(seconds=2) <= valid_until
    assert valid_until <= datetime.now(UTC) + timedelta(minutes=10)
    done = await _wait_status(
        operator, f"{ASYNC}/remote_start_attempt/{attempt['id']}", {"SUCCEEDED"}
    )
    assert done["sessionId"]
    assert done["stopAt"] is None


async def test_remote_start_attempt_expires_and_stop_minutes_stops(
    database_url: str,
) -> None:
    gateway = await Gateway(
        database_url, operator_minute_seconds=0.2, sweep_interval=0.05, operator_timeout=1.0
    ).start()
    try:
        operator = OperatorClient(gateway.base_url, await gateway.state.operator_keys.add("ops"))
        from chargegate.sim import SimulatedStation16

        idle = SimulatedStation16("IDLE", gateway.ws_url, auto_transactions=False)
        busy = SimulatedStation16("BUSY", gateway.ws_url)
        await idle.connect_and_boot()
        await busy.connect_and_boot()
        expiring = (
            await operator.post(
                f"{ASYNC}/remote_start_attempt", {"cpId": "IDLE", "connectorId": 1, "idTag": "T"}
            )
        ).json()
        stopping = (
            await operator.post(
                f"{ASYNC}/remote_start_attempt",
                {
                    "cpId": "BUSY",
                    "connectorId": 1,
                    "idTag": "T",
                    "stopMinutes": 1,
                    "validUntil": (datetime.now(UTC) + timedelta(minutes=5)).isoformat(),
                },
            )
        ).json()
        expired = await _wait_status(
            operator, f"{ASYNC}/remote_start_attempt/{expiring['id']}", {"EXPIRED"}
        )
        assert "validUntil" in expired["message"]
        stop = await busy.wait_for_call("RemoteStopTransaction", timeout=5)
        assert stop["transactionId"] > 0
        started = (await operator.get(f"{ASYNC}/remote_start_attempt/{stopping['id']}")).json()
        assert started["status"] == "SUCCEEDED" and started["stopRequestId"]
        stop_record = await _wait_status(
            operator, f"{ASYNC}/remote_stop/{started['stopRequestId']}", {"ACCEPTED"}
        )
        assert stop_record["sessionId"] == started["sessionId"]
        await idle.close()
        await busy.close()
    finally:
        await gateway.stop()


async def test_locks_refuse_remote_start_and_ocpi(
    operator: OperatorClient, gateway: Gateway, stations: StationFactory
) -> None:
    await stations("CP-1")
    uuid = await operator.connector_uuid("CP-1", 1)
    locked = await operator.request("PUT", f"/stations/CP-1/connectors/{uuid}/lock")
    assert locked.status_code == 200
    assert next(c for c in locked.json()["connectors"] if c["uuid"] == uuid)["locked"] is True
    refused = await operator.post(
        f"{ASYNC}/remote_start_attempt", {"cpId": "CP-1", "connectorUuid": uuid, "idTag": "T"}
    )
    assert refused.status_code == 409 and "locked" in refused.json()["message"]
    other = await operator.post(
        f"{ASYNC}/remote_start_attempt", {"cpId": "CP-1", "connectorId": 2, "idTag": "T"}
    )
    assert other.status_code == 202
    await operator.request("PUT", "/stations/CP-1/lock")
    whole = await operator.post(
        f"{ASYNC}/remote_start_attempt", {"cpId": "CP-1", "connectorId": 2, "idTag": "T"}
    )
    assert (
        whole.status_code == 409 and "station CP-1 is permanently locked" in whole.json()["message"]
    )
    unlocked = await operator.request("DELETE", "/stations/CP-1/lock")
    assert unlocked.json()["locked"] is False


async def test_remote_stop_and_clear_cache(
    operator: OperatorClient, stations: StationFactory
) -> None:
    station = await stations("CP-1")
    attempt = (
        await operator.post(
            f"{ASYNC}/remote_start_attempt", {"cpId": "CP-1", "connectorId": 1, "idTag": "T"}
        )
    ).json()
    done = await _wait_status(
        operator, f"{ASYNC}/remote_start_attempt/{attempt['id']}", {"SUCCEEDED"}
    )
    stop = await operator.post(f"{ASYNC}/remote_stop", {"sessionId": done["sessionId"]})
    assert stop.status_code == 202
    await _wait_status(operator, f"{ASYNC}/remote_stop/{stop.json()['id']}", {"ACCEPTED"})
    assert station.calls("RemoteStopTransaction")
    again = await operator.post(f"{ASYNC}/remote_stop", {"sessionId": "nope"})
    assert again.status_code == 404

    cleared = await operator.post(f"{ASYNC}/CP-1/clear_cache")
    assert cleared.status_code == 202
    reference = cleared.json()["referenceId"]
    status = await _wait_status(
        operator, f"{ASYNC}/CP-1/clear_cache/status/{reference}", {"ACCEPTED", "REJECTED"}
    )
    assert status["status"] == "ACCEPTED" and status["response"] == {"status": "Accepted"}
    wrong = await operator.get(f"{ASYNC}/CP-2/clear_cache/status/{reference}")
    assert wrong.status_code == 404


async def test_keys_and_scopes(gateway: Gateway, stations: StationFactory) -> None:
    await stations("CP-1")
    reader = OperatorClient(gateway.base_url, await gateway.state.operator_keys.add("r", ("read",)))
    nobody = OperatorClient(gateway.base_url, "cgk_wrong")
    assert (await nobody.get("/stations")).status_code == 401
    missing = await reader.request("GET", "/stations", headers={"X-API-Key": ""})
    assert missing.status_code == 401
    assert (await reader.get("/stations")).status_code == 200
    forbidden = await reader.post(f"{SYNC}/CP-1/reset", {"type": "Soft"})
    assert forbidden.status_code == 403 and "operator" in forbidden.json()["detail"]


async def test_communication_log_list_filters_detail_and_pages(
    operator: OperatorClient, stations: StationFactory
) -> None:
    await stations("CP-1")
    await stations("CP-2")
    reset = (await operator.post(f"{SYNC}/CP-1/reset", {"type": "Soft"})).json()
    [message_id] = reset["ocppMessageIds"]
    listed = (await operator.get("/communication_log", station="CP-1", action="Reset")).json()
    assert listed["total"] == 2
    assert [(f["direction"], f["messageType"]) for f in listed["items"]] == [
        ("IN", "CALLRESULT"),
        ("OUT", "CALL"),
    ]  # newest first
    by_id = (await operator.get("/communication_log", message_id=message_id)).json()
    assert {f["messageId"] for f in by_id["items"]} == {message_id}
    outgoing = (await operator.get("/communication_log", station="CP-1", direction="OUT")).json()
    assert all(f["direction"] == "OUT" for f in outgoing["items"])
    page = (await operator.get("/communication_log", limit=2, offset=1)).json()
    assert len(page["items"]) == 2 and page["total"] > 3
    recent = (
        await operator.get(
            "/communication_log", **{"from": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()}
        )
    ).json()
    assert recent["total"] >= 2
    frame = (await operator.get(f"/communication_log/{listed['items'][0]['id']}")).json()
    assert frame["request"]["payload"] == {"type": "Soft"}
    assert frame["response"]["payload"] == {"status": "Accepted"}
    html = await operator.get(reset["communicationLog"].split("?")[0], message_id=message_id)
    assert html.status_code == 200 and "text/html" in html.headers["content-type"]
    assert "Reset" in html.text and message_id in html.text
    detail = await operator.get(f"/communication_log/ui/{frame['id']}")
    assert "&#34;type&#34;: &#34;Soft&#34;" in detail.text or '"type": "Soft"' in detail.text


@pytest.mark.parametrize("version", ["2.1.1", "2.2.1"])
async def test_locked_evse_makes_ocpi_start_and_reserve_rejected(
    operator: OperatorClient, gateway: Gateway, stations: StationFactory, version: str
) -> None:
    from .support.commands import reserve_now, start_session
    from .support.emsp import FakeEmsp
    from .support.ocpi_client import OcpiClient

    emsp = await FakeEmsp().start()
    try:
        await emsp.register(gateway.base_url, await gateway.add_party(), version)
        ocpi = OcpiClient(gateway.base_url, emsp)
        station = await stations("CP-1")
        uuid = await operator.connector_uuid("CP-1", 1)
        await operator.request("PUT", f"/stations/CP-1/connectors/{uuid}/lock")
        url = emsp.response_url("START_SESSION")
        start = await ocpi.command("START_SESSION", start_session(version, url, "CP-1", "CP-1-1"))
        reserve = await ocpi.command(
            "RESERVE_NOW", reserve_now(version, url, "CP-1", "5", "CP-1-1")
        )
        free = await ocpi.command("START_SESSION", start_session(version, url, "CP-1", "CP-1-2"))
        for answer in (start, reserve):
            body = answer.json()
            assert body["status_code"] == 1000
            assert body["data"]["result"] == "REJECTED"
            assert "locked" in body["status_message"]
        assert free.json()["data"]["result"] == "ACCEPTED"
        await operator.request("PUT", "/stations/CP-1/lock")
        whole = await ocpi.command("START_SESSION", start_session(version, url, "CP-1"))
        assert whole.json()["data"]["result"] == "REJECTED"
        assert len(station.calls("RemoteStartTransaction")) <= 1
    finally:
        await emsp.stop()
