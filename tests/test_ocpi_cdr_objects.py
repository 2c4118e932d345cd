"""CDR objects of both OCPI versions, built from in-memory rows (no database)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chargegate.ocpi import placeholders
from chargegate.ocpi.v211 import objects as v211
from chargegate.ocpi.v221 import objects as v221
from chargegate.settings import Settings
from chargegate.store.models import ChargingSession, Connector

from .support import ocpi_rows as rows
from .support.ocpi_rows import (
    AUTH_METHODS,
    SESSION_ID,
    START,
    STATION_ID,
    charging_session,
    check_ocpi_datetimes,
    missing,
    party,
    settings,
    station,
)

# Required (cardinality 1 or +) fields, copied from the spec tables.
# 2.1.1: mod_cdrs.md §3.1 CDR, §4.2 CdrDimension, §4.4 ChargingPeriod; mod_locations.md §3.1-3.3.
CDR_211 = {
    "id", "start_date_time", "stop_date_time", "auth_id", "auth_method", "location", "currency",
    "charging_periods", "total_cost", "total_energy", "total_time", "last_updated",
}  # fmt: skip
LOCATION_211 = {
    "id", "type", "address", "city", "postal_code", "country", "coordinates", "last_updated",
}  # fmt: skip
EVSE_211 = {"uid", "status", "connectors", "last_updated"}
CONNECTOR_211 = {
    "id", "standard", "format", "power_type", "voltage", "amperage", "last_updated",
}  # fmt: skip
# 2.2.1: mod_cdrs.asciidoc CDR, CdrLocation, CdrToken, ChargingPeriod, CdrDimension; types Price.
CDR_221 = {
    "country_code", "party_id", "id", "start_date_time", "end_date_time", "cdr_token",
    "auth_method", "cdr_location", "currency", "charging_periods", "total_cost", "total_energy",
    "total_time", "last_updated",
}  # fmt: skip
CDR_LOCATION_221 = {
    "id", "address", "city", "country", "coordinates", "evse_uid", "evse_id", "connector_id",
    "connector_standard", "connector_format", "connector_power_type",
}  # fmt: skip
CDR_TOKEN_221 = {"country_code", "party_id", "uid", "type", "contract_id"}
PRICE_221 = {"excl_vat"}
# Both versions.
CHARGING_PERIOD = {"start_date_time", "dimensions"}
CDR_DIMENSION = {"type", "volume"}

DATETIME_KEYS = {"last_updated", "start_date_time", "stop_date_time", "end_date_time"}
# eMI3 V1.0 EVSE ID, with the optional "*" separators present.
EMI3_EVSE_ID_RE = re.compile(r"^[A-Z]{2}\*[A-Z0-9]{3}\*E[A-Z0-9][A-Z0-9*]{0,30}$")

# 1 h 28 min 54.75 s after START = 1.481875 h.
END = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
STOPPED_AT = datetime(2026, 11, 24, 12, 0, 1, 500000, tzinfo=UTC)
CONNECTORS_UPDATED = datetime(2026, 11, 24, 12, 0, 2, tzinfo=UTC)

MODULES = pytest.mark.parametrize("module", [v211, v221], ids=["2.1.1", "2.2.1"])


def connector(connector_id: int, ocpp_status: str = "Available") -> Connector:
    return rows.connector(connector_id, ocpp_status, CONNECTORS_UPDATED)


def connectors() -> list[Connector]:
    return [connector(0), connector(1), connector(2, "Finishing")]


def completed(**overrides: Any) -> ChargingSession:
    """A COMPLETED session on connector 2 of STATION_ID, with `overrides`."""
    values: dict[str, Any] = {
        "status": "COMPLETED",
        "stop_reason": "Local",
        "end_date_time": END,
        "last_updated": STOPPED_AT,
    }
    values.update(overrides)
    return charging_session(**values)


def cdr(module: Any, session: ChargingSession | None = None, **kwargs: Any) -> dict[str, Any]:
    result: dict[str, Any] = module.cdr_object(
        session or completed(), station(), connectors(), settings(), **kwargs
    )
    return result


def numbers(obj: Any) -> Iterator[float]:
    if isinstance(obj, bool):
        return
    if isinstance(obj, int | float):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from numbers(value)
    elif isinstance(obj, list):
        for item in obj:
            yield from numbers(item)


def check_charging_periods(body: dict[str, Any]) -> None:
    assert body["charging_periods"]
    for period in body["charging_periods"]:
        assert missing(CHARGING_PERIOD, period) == set()
        assert period["dimensions"]
        for dimension in period["dimensions"]:
            assert missing(CDR_DIMENSION, dimension) == set()


# --- Required fields -------------------------------------------------------------------------


def test_cdr_211_has_every_required_field() -> None:
    body = cdr(v211)

    assert missing(CDR_211, body) == set()
    assert missing(LOCATION_211, body["location"]) == set()
    (evse,) = body["location"]["evses"]
    assert missing(EVSE_211, evse) == set()
    assert missing(CONNECTOR_211, evse["connectors"][0]) == set()
    check_charging_periods(body)
    # The Session's spellings and 2.2.1 names must not leak into the 2.1.1 CDR.
    for key in ("start_datetime", "end_datetime", "end_date_time", "cdr_token", "session_id"):
        assert key not in body, key


def test_cdr_221_has_every_required_field() -> None:
    body = cdr(v221)

    assert missing(CDR_221, body) == set()
    assert missing(CDR_LOCATION_221, body["cdr_location"]) == set()
    assert missing(CDR_TOKEN_221, body["cdr_token"]) == set()
    assert missing(PRICE_221, body["total_cost"]) == set()
    check_charging_periods(body)
    for key in ("stop_date_time", "location", "auth_id", "authorization_id"):
        assert key not in body, key
    # CdrLocation is not a Location: it has no time_zone and no evses.
    assert "time_zone" not in body["cdr_location"]
    assert "evses" not in body["cdr_location"]


@MODULES
def test_cdr_id_is_the_session_id(module: Any) -> None:
    other = completed(id="6b0c1d2e-0000-4000-8000-000000000001")

    assert cdr(module)["id"] == SESSION_ID
    assert cdr(module, other)["id"] == other.id


def test_cdr_221_names_its_session_and_owner() -> None:
    body = cdr(v221, party=party())

    assert body["session_id"] == SESSION_ID
    # The CDR is ours; the token is the eMSP's.
    assert (body["country_code"], body["party_id"]) == ("NL", "CGW")
    assert (body["cdr_token"]["country_code"], body["cdr_token"]["party_id"]) == ("FR", "GIR")
    assert body["currency"] == "EUR"


@MODULES
def test_running_session_has_no_cdr(module: Any) -> None:
    with pytest.raises(ValueError, match="has not ended"):
        cdr(module, completed(end_date_time=None, status="ACTIVE"))


def test_both_versions_share_one_interface() -> None:
    signature = inspect.signature(v211.cdr_object)

    assert signature == inspect.signature(v221.cdr_object)
    # Called alike with the Session objects, as the push code does.
    assert signature == inspect.signature(v211.session_object)


# --- DateTime --------------------------------------------------------------------------------


def test_every_datetime_is_ocpi_formatted() -> None:
    session = completed(
        # Naive, as SQLite hands them back, and with sub-millisecond parts.
        start_date_time=datetime(2026, 11, 24, 10, 31, 5, 250999),
        end_date_time=datetime(2026, 11, 24, 12, 0, 0, 5000),
    )
    bodies = [cdr(v211, session), cdr(v221, session)]

    check_ocpi_datetimes(bodies, DATETIME_KEYS)
    assert bodies[0]["start_date_time"] == "2026-11-24T10:31:05.250Z"
    assert bodies[0]["stop_date_time"] == "2026-11-24T12:00:00.005Z"
    assert bodies[1]["end_date_time"] == "2026-11-24T12:00:00.005Z"


@MODULES
def test_cdr_last_updated_is_when_the_session_stopped(module: Any) -> None:
    assert cdr(module)["last_updated"] == "2026-11-24T12:00:01.500Z"


# --- Totals and charging periods -------------------------------------------------------------


@MODULES
def test_totals_come_from_the_session(module: Any) -> None:
    body = cdr(module)

    assert body["total_energy"] == 12.345
    assert body["total_time"] == 1.4819  # 1.481875 h, four decimals


@MODULES
def test_one_charging_period_with_energy_and_time(module: Any) -> None:
    body = cdr(module)
    (period,) = body["charging_periods"]
    volumes = {d["type"]: d["volume"] for d in period["dimensions"]}

    assert period["start_date_time"] == "2026-11-24T10:31:05.250Z"
    # The period's volumes add up to the totals, as an eMSP checking the CDR expects.
    assert volumes == {"ENERGY": body["total_energy"], "TIME": body["total_time"]}


@MODULES
def test_numbers_have_at_most_four_decimals(module: Any) -> None:
    # 7 s = 0.0019444… h.
    body = cdr(module, completed(kwh=0.1234567, end_date_time=START + timedelta(seconds=7)))

    assert body["total_time"] == 0.0019
    assert body["total_energy"] == 0.1235
    for value in numbers(body):
        assert round(value, 4) == value, value


@MODULES
def test_stop_before_start_is_no_negative_time(module: Any) -> None:
    body = cdr(module, completed(end_date_time=datetime(2026, 11, 24, 10, 0, tzinfo=UTC)))

    assert body["total_time"] == 0
    assert body["charging_periods"][0]["dimensions"][1] == {"type": "TIME", "volume": 0}


def test_total_cost_is_zero_in_each_versions_type() -> None:
    # 2.1.1: a number excluding VAT; 2.2.1: a Price.
    assert cdr(v211)["total_cost"] == 0
    assert cdr(v221)["total_cost"] == {"excl_vat": 0}


# --- Authorization ---------------------------------------------------------------------------


def test_211_echoes_authorization_id_gireve() -> None:
    with_ref = cdr(v211, completed(authorization_reference="mmm-ttt"))
    without = cdr(v211)

    assert with_ref["authorization_id"] == "mmm-ttt"
    assert "authorization_reference" not in with_ref
    assert "authorization_id" not in without


def test_221_echoes_authorization_reference() -> None:
    with_ref = cdr(v221, completed(authorization_reference="CCCC-VVVV-BBBB"))
    without = cdr(v221)

    assert with_ref["authorization_reference"] == "CCCC-VVVV-BBBB"
    assert "authorization_id" not in with_ref
    assert "authorization_reference" not in without


@pytest.mark.parametrize(("stored", "expected_211", "expected_221"), AUTH_METHODS)
def test_auth_method_per_version(stored: str, expected_211: str, expected_221: str) -> None:
    session = completed(auth_method=stored)

    assert cdr(v211, session)["auth_method"] == expected_211
    assert cdr(v221, session)["auth_method"] == expected_221


TOKEN_211 = {
    "uid": "11111",
    "type": "OTHER",
    "auth_id": "FR-GIR-C12345678",
    "issuer": "issuer",
    "valid": True,
    "whitelist": "ALWAYS",
    "last_updated": "2020-01-21T06:43:13Z",
}


def test_211_auth_id_is_the_sessions() -> None:
    session = completed(token=TOKEN_211)
    body = cdr(v211, session)

    assert body["auth_id"] == "FR-GIR-C12345678"
    assert body["auth_id"] == v211.session_object(session, station(), [], settings())["auth_id"]
    assert cdr(v211, completed(token=None))["auth_id"] == "IDTAG0001"


@pytest.mark.parametrize("with_party", [True, False], ids=["party", "no-party"])
def test_221_cdr_token_is_the_sessions(with_party: bool) -> None:
    session = completed(token=TOKEN_211)
    kwargs: dict[str, Any] = {"party": party()} if with_party else {}
    body = cdr(v221, session, **kwargs)
    session_body = v221.session_object(session, station(), connectors(), settings(), **kwargs)

    assert body["cdr_token"] == session_body["cdr_token"]
    assert body["cdr_token"]["contract_id"] == "FR-GIR-C12345678"
    assert body["cdr_token"]["party_id"] == ("GIR" if with_party else "CGW")


# --- Where -----------------------------------------------------------------------------------


def test_211_location_has_only_the_sessions_evse() -> None:
    session = completed(connector_id=2)
    body = cdr(v211, session)
    location = body["location"]

    assert location["id"] == STATION_ID
    assert [evse["uid"] for evse in location["evses"]] == [f"{STATION_ID}-2"]
    assert location["evses"][0]["connectors"][0]["id"] == "1"
    # The same embedded Location as the session's own.
    assert location == v211.session_object(session, station(), connectors(), settings())["location"]


def test_221_cdr_location_fields() -> None:
    loc = cdr(v221, completed(connector_id=2))["cdr_location"]

    assert loc["id"] == STATION_ID
    assert loc["address"] == placeholders.ADDRESS
    assert loc["city"] == placeholders.CITY
    assert loc["postal_code"] == placeholders.POSTAL_CODE
    assert loc["country"] == "NLD"
    assert loc["coordinates"] == {"latitude": "0.000000", "longitude": "0.000000"}
    assert loc["evse_uid"] == f"{STATION_ID}-2"
    assert loc["evse_id"] == "NL*CGW*ECP*AMS*01*2"
    assert loc["connector_id"] == "1"
    assert loc["connector_standard"] == "IEC_62196_T2"
    assert loc["connector_format"] == "SOCKET"
    assert loc["connector_power_type"] == "AC_3_PHASE"


def test_221_cdr_location_matches_the_session_pointers() -> None:
    session = completed(connector_id=1)
    loc = cdr(v221, session)["cdr_location"]
    session_body = v221.session_object(session, station(), connectors(), settings())

    assert loc["id"] == session_body["location_id"]
    assert loc["evse_uid"] == session_body["evse_uid"]
    assert loc["connector_id"] == session_body["connector_id"]


@pytest.mark.parametrize(
    "station_id",
    [STATION_ID, "cp_ams.01", "A" * 48, "---", "Wallbox 12/Ground floor, parking B"],
)
def test_evse_id_is_emi3(station_id: str) -> None:
    value = placeholders.evse_id(settings(), station_id, 2)

    assert EMI3_EVSE_ID_RE.match(value), value
    assert len(value) <= 48
    assert value.endswith("*2")


def test_evse_ids_of_long_station_ids_stay_apart() -> None:
    first = placeholders.evse_id(settings(), "A" * 47 + "1", 1)
    second = placeholders.evse_id(settings(), "A" * 47 + "2", 1)

    assert first != second
    assert placeholders.evse_id(settings(), STATION_ID, 1) != placeholders.evse_id(
        settings(), STATION_ID, 2
    )


def test_evse_id_uses_our_party_in_upper_case() -> None:
    lower = Settings(country_code="fr", party_id="cgw", currency="EUR")

    assert placeholders.evse_id(lower, "cp-1", 3) == "FR*CGW*ECP*1*3"


# --- the operator's Location data ---------------------------------------------------------------

SITE = {
    "name": "Damrak garage",
    "address": "Damrak 1",
    "city": "Amsterdam",
    "postal_code": "1012 LG",
    "state": "Noord-Holland",
    "country": "NLD",
    "coordinates": {"latitude": "52.376510", "longitude": "4.894870"},
    "time_zone": "Europe/Amsterdam",
}
DC_PLUG = {
    "standard": "CHADEMO",
    "format": "CABLE",
    "power_type": "DC",
    "max_voltage": 500,
    "max_amperage": 125,
}


def test_cdrs_take_the_real_site_and_plug() -> None:
    described = station()
    described.site = dict(SITE)
    plugs = connectors()
    plugs[2].spec = dict(DC_PLUG)  # connector 2, the session's
    cdr_221 = v221.cdr_object(completed(), described, plugs, settings())["cdr_location"]
    cdr_211 = v211.cdr_object(completed(), described, plugs, settings())["location"]

    assert missing(CDR_LOCATION_221, cdr_221) == set()
    assert {k: cdr_221[k] for k in SITE if k != "time_zone"} == {
        k: v for k, v in SITE.items() if k != "time_zone"
    }
    assert (cdr_221["connector_standard"], cdr_221["connector_power_type"]) == ("CHADEMO", "DC")
    assert missing(LOCATION_211, cdr_211) == set()
    assert (cdr_211["address"], cdr_211["time_zone"], cdr_211["type"]) == (
        "Damrak 1",
        "Europe/Amsterdam",
        "UNKNOWN",
    )
    assert "state" not in cdr_211  # 2.1.1 has no state
    assert cdr_211["evses"][0]["connectors"][0]["voltage"] == 500
