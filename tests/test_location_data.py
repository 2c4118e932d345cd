"""Location data as the operator gives it, validated before anything is stored (pure: no
database), and OCPI Location JSON of both versions read into it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from chargegate.domain.location_data import (
    LocationDataError,
    parse_connector_spec,
    parse_connector_specs,
    parse_site,
    served_as_location,
)
from chargegate.domain.location_import import documents_of, read_location

from .test_ocpi_objects import LATITUDE_RES, LONGITUDE_RES

SITE: dict[str, Any] = {
    "address": "Damrak 1",
    "city": "Amsterdam",
    "postal_code": "1012 LG",
    "country": "NLD",
    "coordinates": {"latitude": "52.376510", "longitude": "4.894870"},
    "time_zone": "Europe/Amsterdam",
}
PLUG: dict[str, Any] = {
    "standard": "IEC_62196_T2",
    "format": "SOCKET",
    "power_type": "AC_3_PHASE",
    "max_voltage": 230,
    "max_amperage": 32,
}


def problems(call: Any, *args: Any) -> list[str]:
    with pytest.raises(LocationDataError) as raised:
        call(*args)
    return raised.value.problems


def test_a_complete_site_is_taken_and_country_upper_cased() -> None:
    site = parse_site({**SITE, "country": " nld "})
    assert site.country == "NLD" and site.time_zone == "Europe/Amsterdam"


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("52.37651", "52.376510"),  # five decimals (2.2.1's least) padded
        ("52.3765123", "52.376512"),  # seven (2.2.1's most) rounded to six
        ("-0.5", "-0.500000"),
        ("90", "90.000000"),
    ],
)
def test_latitude_is_stored_in_the_form_both_versions_accept(given: str, sent: str) -> None:
    coordinates = parse_site({**SITE, "coordinates": {"latitude": given, "longitude": given}})
    assert coordinates.coordinates.latitude == sent
    for pattern in LATITUDE_RES:
        assert re.fullmatch(pattern, coordinates.coordinates.latitude)
    for pattern in LONGITUDE_RES:
        assert re.fullmatch(pattern, coordinates.coordinates.longitude)


@pytest.mark.parametrize(
    ("latitude", "longitude", "words"),
    [
        ("90.000001", "4.0", "latitude 90.000001 is outside -90..90"),
        ("52.0", "-180.5", "longitude -180.5 is outside -180..180"),
        ("52,37", "4.0", "not a decimal number"),
        ("52.12345678", "4.0", "at most 7 decimals"),
        (52.37, "4.0", "must be a string"),
        ("1e2", "4.0", "not a decimal number"),
    ],
)
def test_bad_coordinates_are_named(latitude: Any, longitude: Any, words: str) -> None:
    site = {**SITE, "coordinates": {"latitude": latitude, "longitude": longitude}}
    found = problems(parse_site, site)
    assert any(words in p for p in found), found


def test_every_problem_of_a_site_is_listed_with_its_field() -> None:
    site = {
        **SITE,
        "address": "",
        "postal_code": "12345678901",
        "country": "NL",
        "time_zone": "CET+1",
        "parking_type": "ROOFTOP",
        "colour": "green",
    }
    del site["city"]
    found = problems(parse_site, site)
    fields = [p.split(":")[0] for p in found]
    assert sorted(fields) == sorted(
        [
            "site.address",
            "site.city",
            "site.postal_code",
            "site.country",
            "site.time_zone",
            "site.parking_type",
            "site.colour",
        ]
    )
    assert "ISO 3166-1 alpha-3" in " ".join(found) and "IANA time zone" in " ".join(found)
    assert "site.colour: not a field we know (typo?)" in found


def test_a_plug_is_validated() -> None:
    assert parse_connector_spec(PLUG).standard == "IEC_62196_T2"
    found = problems(
        parse_connector_spec,
        {**PLUG, "standard": "GBT_DC", "power_type": "AC_2_PHASE", "max_voltage": 0},
    )
    assert [p.split(":")[0] for p in found] == [
        "connector.standard",
        "connector.power_type",
        "connector.max_voltage",
    ]
    long_reference = {**PLUG, "physical_reference": "x" * 17}
    assert problems(parse_connector_spec, long_reference)[0].startswith(
        "connector.physical_reference"
    )


def test_connector_ids_are_numbers_from_1() -> None:
    assert set(parse_connector_specs({"1": PLUG, 2: PLUG})) == {1, 2}
    found = problems(parse_connector_specs, {"0": PLUG, "x": PLUG, "3": {}})
    assert found[0].startswith("connectors.0: a connector id") and found[1].startswith(
        "connectors.x"
    )
    assert any(p.startswith("connectors.3.standard") for p in found)


def test_open_mode_serves_every_station_registered_only_published_ones() -> None:
    assert served_as_location(False, "open") and served_as_location(True, "registered")
    assert not served_as_location(False, "registered")


# --- import ----------------------------------------------------------------------------------


def _evse(uid: str, connector: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"uid": uid, "status": "AVAILABLE", "connectors": [{"id": "1", **connector}], **extra}


def test_a_211_location_is_read_with_its_field_names() -> None:
    document = {
        "id": "L1",
        "type": "UNDERGROUND_GARAGE",
        **SITE,
        "opening_times": {"twentyfourseven": True},
        "evses": [_evse("E1", {**PLUG, "max_voltage": None, "voltage": 400, "amperage": 16})],
    }
    del document["evses"][0]["connectors"][0]["max_voltage"]
    del document["evses"][0]["connectors"][0]["max_amperage"]
    location = read_location(document)
    assert location.location_id == "L1"
    assert location.site.parking_type == "UNDERGROUND_GARAGE" and location.site.twentyfourseven
    assert (location.evses[0].spec.max_voltage, location.evses[0].spec.max_amperage) == (400, 16)


def test_a_221_location_is_read_and_other_and_unknown_types_name_no_parking() -> None:
    document = {
        "country_code": "NL",
        "party_id": "OLD",
        "id": "L2",
        "publish": True,
        "type": "OTHER",
        **SITE,
        "state": "Noord-Holland",
        "evses": [_evse("E1", {**PLUG, "max_electric_power": 22000}, physical_reference="P1")],
    }
    location = read_location(document)
    assert location.site.parking_type is None and location.site.state == "Noord-Holland"
    assert location.evses[0].spec.max_electric_power == 22000
    assert location.evses[0].spec.physical_reference == "P1"


def test_what_an_import_cannot_represent_is_an_error() -> None:
    document = {
        **SITE,
        "evses": [
            {"uid": "E1", "connectors": [{"id": "1", **PLUG}, {"id": "2", **PLUG}]},
            _evse("E2", PLUG),
            _evse("E2", PLUG),
        ],
    }
    found = problems(read_location, document)
    assert "location.id: the Location id is required" in found
    assert any(p.startswith("location.evses[0].connectors: 2 connectors") for p in found)
    assert "location.evses: uid 'E2' is there twice" in found


def test_documents_are_one_object_a_list_or_an_ocpi_response() -> None:
    assert documents_of({"id": "L"}) == [{"id": "L"}]
    assert documents_of([{"id": "L"}, {"id": "M"}]) == [{"id": "L"}, {"id": "M"}]
    envelope = {"data": [{"id": "L"}], "status_code": 1000, "timestamp": "2026-01-01T00:00:00Z"}
    assert documents_of(envelope) == [{"id": "L"}]
