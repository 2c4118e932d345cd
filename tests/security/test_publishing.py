"""Publishing is a decision: in the registered (default) mode a station is an
OCPI Location only once an operator published it with real data; until then partners see it as
they see an unknown Location, in lists, by id and in commands. The open (development) mode
serves every station, decided when asked.

Stations are created as rows (a station need not be connected to be a Location), so these
tests do not depend on how stations are admitted."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chargegate.store.station_mapping_store import SqlStationMappingStore

from ..conftest import Gateway
from ..support.cli_process import run_cli
from ..support.commands import reserve_now, start_session, unlock
from ..support.emsp import FakeEmsp
from ..support.ocpi_client import OcpiClient
from ..support.operator import OperatorClient
from ..support.servers import running
from ..test_ocpi_objects import (
    CONNECTOR_211,
    CONNECTOR_221,
    EVSE_211,
    EVSE_221,
    LATITUDE_RES,
    LOCATION_211,
    LOCATION_221,
    LONGITUDE_RES,
)

SITE = {
    "name": "Damrak garage",
    "address": "Damrak 1",
    "city": "Amsterdam",
    "postal_code": "1012 LG",
    "country": "NLD",
    "coordinates": {"latitude": "52.37651", "longitude": "4.8948700"},
    "time_zone": "Europe/Amsterdam",
    "parking_type": "PARKING_GARAGE",
    "facilities": ["CAFE", "METRO_STATION"],
    "twentyfourseven": True,
}
PLUG = {
    "standard": "IEC_62196_T2_COMBO",
    "format": "CABLE",
    "power_type": "DC",
    "max_voltage": 920,
    "max_amperage": 200,
    "max_electric_power": 150000,
    "physical_reference": "A1",
}


@pytest.fixture
async def gateway(database_url: str) -> AsyncIterator[Gateway]:
    async with running(Gateway(database_url, ocpp_admission="registered")) as gw:
        yield gw


@pytest.fixture(params=["2.1.1", "2.2.1"])
async def ocpi(request: pytest.FixtureRequest, gateway: Gateway, emsp: FakeEmsp) -> OcpiClient:
    await emsp.register(gateway.base_url, await gateway.add_party(), request.param)
    return OcpiClient(gateway.base_url, emsp)


@pytest.fixture
async def operator(gateway: Gateway) -> OperatorClient:
    return OperatorClient(gateway.base_url, await gateway.state.operator_keys.add("ops"))


async def station_row(gateway: Gateway, station_id: str, connectors: int = 2) -> None:
    """A station as an operator prepares it before it connects: a row with its connectors."""
    await SqlStationMappingStore(gateway.state.sessions).map(
        station_id,
        location_id=None,
        evses={n: f"{station_id}-{n}" for n in range(1, connectors + 1)},
    )


async def put_location(operator: OperatorClient, station_id: str, **extra: Any) -> Any:
    body = {"site": SITE, "connectors": {"1": PLUG, "2": {**PLUG, "physical_reference": "A2"}}}
    return await operator.request("PUT", f"/stations/{station_id}/location", json=body | extra)


def without_id(body: dict[str, Any], location_id: str) -> str:
    """An answer with the Location id taken out, to compare with another's."""
    return json.dumps({k: v for k, v in body.items() if k != "timestamp"}).replace(
        location_id, "<id>"
    )


# --- not published: as unknown ------------------------------------------------------------------


async def test_an_unpublished_station_is_no_location(
    ocpi: OcpiClient, gateway: Gateway, operator: OperatorClient
) -> None:
    await station_row(gateway, "CP-HIDDEN")
    assert (await put_location(operator, "CP-HIDDEN")).status_code == 200  # data, not published

    listing = await ocpi.get("locations")
    assert listing.json()["data"] == [] and listing.headers["X-Total-Count"] == "0"
    for path in ("CP-HIDDEN", "CP-HIDDEN/CP-HIDDEN-1", "CP-HIDDEN/CP-HIDDEN-1/1"):
        hidden = await ocpi.get(f"locations/{path}")
        unknown = await ocpi.get(f"locations/{path.replace('CP-HIDDEN', 'CP-NOWHERE')}")
        assert hidden.status_code == unknown.status_code == 404
        assert without_id(hidden.json(), "CP-HIDDEN") == without_id(unknown.json(), "CP-NOWHERE")
        assert hidden.json()["status_code"] == 2003


@pytest.mark.parametrize("command", ["START_SESSION", "RESERVE_NOW", "UNLOCK_CONNECTOR"])
async def test_commands_for_an_unpublished_location_answer_as_for_an_unknown_one(
    ocpi: OcpiClient, gateway: Gateway, command: str
) -> None:
    await station_row(gateway, "CP-HIDDEN")

    def body(location: str) -> dict[str, Any]:
        url = ocpi.emsp.response_url(command)
        evse = f"{location}-1"
        if command == "START_SESSION":
            return start_session(ocpi.version, url, location, evse)
        if command == "RESERVE_NOW":
            return reserve_now(ocpi.version, url, location, "42", evse)
        return unlock(url, location, evse)

    hidden = await ocpi.command(command, body("CP-HIDDEN"))
    unknown = await ocpi.command(command, body("CP-NOWHERE"))
    assert hidden.status_code == unknown.status_code
    assert without_id(hidden.json(), "CP-HIDDEN") == without_id(unknown.json(), "CP-NOWHERE")
    assert hidden.json()["status_code"] == 2003


# --- published with data ------------------------------------------------------------------------


async def test_a_published_station_is_a_location_with_its_data(
    ocpi: OcpiClient, gateway: Gateway, operator: OperatorClient
) -> None:
    await station_row(gateway, "CP-PUB")
    await station_row(gateway, "CP-HIDDEN")
    assert (await put_location(operator, "CP-PUB")).status_code == 200
    published = await operator.request("PUT", "/stations/CP-PUB/publication")
    assert published.status_code == 200 and published.json()["published"] is True

    listing = (await ocpi.get("locations")).json()["data"]
    assert [loc["id"] for loc in listing] == ["CP-PUB"]
    location = (await ocpi.get("locations/CP-PUB")).json()["data"]
    assert location == listing[0]
    v211 = ocpi.version == "2.1.1"
    required = (
        (LOCATION_211, EVSE_211, CONNECTOR_211) if v211 else (LOCATION_221, EVSE_221, CONNECTOR_221)
    )
    assert required[0] - location.keys() == set()
    assert (location["address"], location["city"], location["postal_code"]) == (
        "Damrak 1",
        "Amsterdam",
        "1012 LG",
    )
    assert (location["name"], location["country"], location["time_zone"]) == (
        "Damrak garage",
        "NLD",
        "Europe/Amsterdam",
    )
    # Stored and sent with six decimals, the form both versions' regexes accept.
    assert location["coordinates"] == {"latitude": "52.376510", "longitude": "4.894870"}
    for pattern in LATITUDE_RES:
        assert re.fullmatch(pattern, location["coordinates"]["latitude"])
    for pattern in LONGITUDE_RES:
        assert re.fullmatch(pattern, location["coordinates"]["longitude"])
    assert location["opening_times"] == {"twentyfourseven": True}
    if v211:
        assert location["type"] == "PARKING_GARAGE" and "parking_type" not in location
        assert location["facilities"] == ["CAFE"]  # METRO_STATION is 2.2.1's only
    else:
        assert location["parking_type"] == "PARKING_GARAGE" and "type" not in location
        assert location["facilities"] == ["CAFE", "METRO_STATION"]
    assert [e["uid"] for e in location["evses"]] == ["CP-PUB-1", "CP-PUB-2"]
    evse = location["evses"][0]
    assert required[1] - evse.keys() == set() and evse["physical_reference"] == "A1"
    connector = evse["connectors"][0]
    assert required[2] - connector.keys() == set()
    assert (connector["standard"], connector["format"], connector["power_type"]) == (
        "IEC_62196_T2_COMBO",
        "CABLE",
        "DC",
    )
    if v211:
        assert (connector["voltage"], connector["amperage"]) == (920, 200)
        assert "max_voltage" not in connector and "max_electric_power" not in connector
    else:
        assert (connector["max_voltage"], connector["max_amperage"]) == (920, 200)
        assert connector["max_electric_power"] == 150000 and "voltage" not in connector

    withdrawn = await operator.request("DELETE", "/stations/CP-PUB/publication")
    assert withdrawn.status_code == 200 and withdrawn.json()["published"] is False
    assert (await ocpi.get("locations/CP-PUB")).status_code == 404


async def test_publishing_needs_the_data_and_a_bad_field_writes_nothing(
    gateway: Gateway, operator: OperatorClient
) -> None:
    await station_row(gateway, "CP-1")
    refused = await operator.request("PUT", "/stations/CP-1/publication")
    assert refused.status_code == 409
    problems = refused.json()["detail"]["problems"]
    assert any("no Location data" in p for p in problems)
    assert any("connector 1 has no plug data" in p for p in problems)

    bad_site = {**SITE, "country": "NL", "time_zone": "Mars/Olympus", "postal_code": "1" * 11}
    bad_site["coordinates"] = {"latitude": "91.000000", "longitude": "4.89"}
    bad = await operator.request(
        "PUT",
        "/stations/CP-1/location",
        json={"site": bad_site, "connectors": {"1": PLUG, "2": {**PLUG, "standard": "GBT_DC"}}},
    )
    assert bad.status_code == 400
    problems = bad.json()["detail"]["problems"]
    for words in ("site.country", "site.time_zone", "site.postal_code", "latitude", "2.standard"):
        assert any(words in p for p in problems), (words, problems)
    shown = (await operator.get("/stations/CP-1/location")).json()
    assert shown["site"] is None and all(c["spec"] is None for c in shown["connectors"])
    assert (
        await operator.request("PUT", "/stations/NOPE/location", json={"site": SITE})
    ).status_code == 404


async def test_the_location_api_needs_the_operator_scope_to_write(
    gateway: Gateway, operator: OperatorClient
) -> None:
    await station_row(gateway, "CP-1")
    reader = OperatorClient(gateway.base_url, await gateway.state.operator_keys.add("r", ("read",)))
    assert (await reader.get("/stations/CP-1/location")).status_code == 200
    assert (await put_location(reader, "CP-1")).status_code == 403
    assert (await reader.request("PUT", "/stations/CP-1/publication")).status_code == 403
    assert (await reader.request("DELETE", "/stations/CP-1/publication")).status_code == 403
    assert (await reader.post("/locations/import", json={})).status_code == 403
    anonymous = OperatorClient(gateway.base_url, "")
    assert (await anonymous.get("/stations/CP-1/location")).status_code == 401
    assert (await operator.get("/stations/CP-1/location")).json()["published"] is False


async def test_open_mode_serves_every_station_decided_when_asked(database_url: str) -> None:
    """A station seen in open (development) mode is served with placeholders; the same database
    under registered admission serves it no more, as its operator never published it."""
    async with running(FakeEmsp()) as emsp:
        async with running(Gateway(database_url, ocpp_admission="open")) as dev:
            await station_row(dev, "CP-DEV")
            await emsp.register(dev.base_url, await dev.add_party(), "2.2.1")
            found = await OcpiClient(dev.base_url, emsp).get("locations/CP-DEV")
            assert found.json()["data"]["address"] == "unknown"  # placeholders: undescribed
        async with running(Gateway(database_url, ocpp_admission="registered")) as gw:
            listing = await OcpiClient(gw.base_url, emsp).get("locations")
            assert listing.status_code == 200 and listing.json()["data"] == []


# --- import ---------------------------------------------------------------------------------------

LOCATION_221_DOC: dict[str, Any] = {
    "country_code": "NL",
    "party_id": "OLD",
    "id": "CP-IMP",
    "publish": True,
    "name": "Old backend's name",
    "address": "Stationsplein 1",
    "city": "Utrecht",
    "postal_code": "3511 ED",
    "state": "Utrecht",
    "country": "NLD",
    "coordinates": {"latitude": "52.0893191", "longitude": "5.1101691"},
    "parking_type": "ON_STREET",
    "time_zone": "Europe/Amsterdam",
    "evses": [
        {
            "uid": "CP-IMP-1",
            "status": "AVAILABLE",
            "physical_reference": "U1",
            "connectors": [
                {
                    "id": "1",
                    "standard": "IEC_62196_T2",
                    "format": "SOCKET",
                    "power_type": "AC_3_PHASE",
                    "max_voltage": 230,
                    "max_amperage": 16,
                    "max_electric_power": 11000,
                    "last_updated": "2026-01-01T00:00:00Z",
                }
            ],
            "last_updated": "2026-01-01T00:00:00Z",
        }
    ],
    "last_updated": "2026-01-01T00:00:00Z",
}
LOCATION_211_DOC: dict[str, Any] = {
    "id": "OLD-LOC-7",
    "type": "PARKING_LOT",
    "address": "Rue de Rivoli 1",
    "city": "Paris",
    "postal_code": "75001",
    "country": "FRA",
    "coordinates": {"latitude": "48.856614", "longitude": "2.352222"},
    "time_zone": "Europe/Paris",
    "evses": [
        {
            "uid": f"OLD-EVSE-{n}",
            "status": "AVAILABLE",
            "connectors": [
                {
                    "id": "1",
                    "standard": "CHADEMO",
                    "format": "CABLE",
                    "power_type": "DC",
                    "voltage": 500,
                    "amperage": 125,
                    "last_updated": "2026-01-01T00:00:00Z",
                }
            ],
            "last_updated": "2026-01-01T00:00:00Z",
        }
        for n in (1, 2)
    ],
    "last_updated": "2026-01-01T00:00:00Z",
}


async def test_import_a_221_location_by_uid_and_a_211_one_by_order(
    ocpi: OcpiClient, gateway: Gateway, operator: OperatorClient
) -> None:
    await station_row(gateway, "CP-IMP", connectors=1)
    await station_row(gateway, "CP-PARIS", connectors=2)

    by_uid = await operator.post("/locations/import?publish=true", json=LOCATION_221_DOC)
    assert by_uid.status_code == 200, by_uid.text
    by_order = await operator.request(
        "POST",
        "/locations/import",
        params={"cpId": "CP-PARIS", "match": "order", "publish": "true"},
        json=LOCATION_211_DOC,
    )
    assert by_order.status_code == 200, by_order.text

    utrecht = (await ocpi.get("locations/CP-IMP")).json()["data"]
    assert (utrecht["city"], utrecht["coordinates"]["latitude"]) == ("Utrecht", "52.089319")
    plug = utrecht["evses"][0]["connectors"][0]
    assert utrecht["evses"][0]["physical_reference"] == "U1"
    assert plug["amperage" if ocpi.version == "2.1.1" else "max_amperage"] == 16
    paris = (await ocpi.get("locations/CP-PARIS")).json()["data"]
    # Our ids stay ours: the import describes the station, mapping ids is `station map`'s job.
    assert [e["uid"] for e in paris["evses"]] == ["CP-PARIS-1", "CP-PARIS-2"]
    assert paris["country"] == "FRA" and paris["time_zone"] == "Europe/Paris"
    assert paris["evses"][1]["connectors"][0]["standard"] == "CHADEMO"
    assert (paris["type"] if ocpi.version == "2.1.1" else paris["parking_type"]) == "PARKING_LOT"


async def test_a_bad_import_names_every_problem_and_writes_nothing(
    gateway: Gateway, operator: OperatorClient
) -> None:
    await station_row(gateway, "CP-IMP", connectors=1)
    await station_row(gateway, "OLD-LOC-7", connectors=2)
    await station_row(gateway, "CP-OTHER", connectors=1)
    broken = copy.deepcopy(LOCATION_211_DOC)
    broken["evses"][1]["connectors"][0]["power_type"] = "AC_9_PHASE"
    del broken["city"]
    unmatched = {
        **LOCATION_221_DOC,
        "id": "CP-OTHER",
        "evses": [{**LOCATION_221_DOC["evses"][0], "uid": "X-9"}],
    }
    response = await operator.post("/locations/import", json=[LOCATION_221_DOC, broken, unmatched])
    assert response.status_code == 400
    problems = response.json()["detail"]["problems"]
    assert any(p.startswith("locations[1].city") for p in problems), problems
    assert any("locations[1].evses[1].connectors[0].power_type" in p for p in problems), problems
    assert any("'X-9' is none of station 'CP-OTHER'" in p for p in problems), problems
    # The first Location was fine, and still nothing of it was written.
    assert (await operator.get("/stations/CP-IMP/location")).json()["site"] is None


async def test_cli_set_publish_import_and_show(
    gateway: Gateway, ocpi: OcpiClient, tmp_path: Path
) -> None:
    await station_row(gateway, "CP-CLI", connectors=1)
    await station_row(gateway, "CP-IMP", connectors=1)
    code, _, err = await run_cli(gateway, "location", "publish", "CP-CLI")
    assert code == 2 and "no Location data" in err and "nothing was written" in err

    code, out, err = await run_cli(
        gateway,
        "location", "set", "CP-CLI",
        "--address", "Damrak 1", "--city", "Amsterdam", "--postal-code", "1012 LG",
        "--country", "nld", "--latitude", "52.3765", "--longitude", "4.89487",
        "--time-zone", "Europe/Amsterdam",
        "--connector", "1:standard=IEC_62196_T2,format=SOCKET,power_type=AC_3_PHASE,"
        "max_voltage=230,max_amperage=32,physical_reference=7",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["site"]["coordinates"] == {
        "latitude": "52.376500",
        "longitude": "4.894870",
    }
    code, out, err = await run_cli(gateway, "location", "publish", "CP-CLI")
    assert code == 0, err
    location = (await ocpi.get("locations/CP-CLI")).json()["data"]
    assert location["country"] == "NLD" and location["evses"][0]["physical_reference"] == "7"

    bad = await run_cli(gateway, "location", "set", "CP-CLI", "--time-zone", "Nowhere/Land")
    assert bad[0] == 2 and "time_zone" in bad[2] and "address" in bad[2]

    document = tmp_path / "utrecht.json"
    document.write_text(json.dumps([LOCATION_221_DOC]))
    code, out, err = await run_cli(gateway, "location", "import", str(document), "--publish")
    assert code == 0, err
    assert (await ocpi.get("locations/CP-IMP")).json()["data"]["city"] == "Utrecht"
    code, out, err = await run_cli(gateway, "location", "unpublish", "CP-IMP")
    assert code == 0, err
    assert (await ocpi.get("locations/CP-IMP")).status_code == 404
    code, out, _ = await run_cli(gateway, "location", "show", "CP-IMP")
    assert code == 0 and json.loads(out)["published"] is False
