"""Location and Session objects of both OCPI versions, built from in-memory rows (no database)."""

from __future__ import annotations

import inspect
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from chargegate.ocpi import placeholders
from chargegate.ocpi.v211 import objects as v211
from chargegate.ocpi.v221 import objects as v221
from chargegate.settings import Settings
from chargegate.store.models import Connector, Station

from .support import ocpi_rows as rows
from .support.ocpi_rows import (
    AUTH_METHODS,
    STATION_ID,
    charging_session,
    check_ocpi_datetimes,
    missing,
    party,
    settings,
)

# Required (cardinality 1 or +) fields, copied from the spec tables.
# 2.1.1: mod_locations.md §3.1-3.3, mod_sessions.md §3.1.
LOCATION_211 = {
    "id", "type", "address", "city", "postal_code", "country", "coordinates", "last_updated",
}  # fmt: skip
EVSE_211 = {"uid", "status", "connectors", "last_updated"}
CONNECTOR_211 = {
    "id", "standard", "format", "power_type", "voltage", "amperage", "last_updated",
}  # fmt: skip
SESSION_211 = {
    "id", "start_datetime", "kwh", "auth_id", "auth_method", "location", "currency", "status",
    "last_updated",
}  # fmt: skip
# 2.2.1: mod_locations.asciidoc, mod_sessions.asciidoc, mod_cdrs.asciidoc (CdrToken).
LOCATION_221 = {
    "country_code", "party_id", "id", "publish", "address", "city", "country", "coordinates",
    "time_zone", "last_updated",
}  # fmt: skip
EVSE_221 = {"uid", "status", "connectors", "last_updated"}
CONNECTOR_221 = {
    "id", "standard", "format", "power_type", "max_voltage", "max_amperage", "last_updated",
}  # fmt: skip
SESSION_221 = {
    "country_code", "party_id", "id", "start_date_time", "kwh", "cdr_token", "auth_method",
    "location_id", "evse_uid", "connector_id", "currency", "status", "last_updated",
}  # fmt: skip
CDR_TOKEN_221 = {"country_code", "party_id", "uid", "type", "contract_id"}

DATETIME_KEYS = {
    "last_updated",
    "start_datetime",
    "end_datetime",
    "start_date_time",
    "end_date_time",
}
# GeoLocation regexes: 2.1.1 demands six decimals, 2.2.1 five to seven.
LATITUDE_RES = [r"-?[0-9]{1,2}\.[0-9]{6}", r"-?[0-9]{1,2}\.[0-9]{5,7}"]
LONGITUDE_RES = [r"-?[0-9]{1,3}\.[0-9]{6}", r"-?[0-9]{1,3}\.[0-9]{5,7}"]

LAST_SEEN = datetime(2026, 11, 30, 23, 59, 0, tzinfo=UTC)
# Microseconds, so ocpi_datetime's millisecond branch is exercised.
CONN1_UPDATED = datetime(2026, 11, 23, 8, 0, 0, 123456, tzinfo=UTC)
# Naive, as SQLite hands it back.
CONN2_UPDATED = datetime(2026, 11, 24, 10, 30, 0)


def station(station_id: str = STATION_ID) -> Station:
    return rows.station(station_id, last_seen=LAST_SEEN)


def connector(
    connector_id: int,
    ocpp_status: str | None = "Available",
    updated_at: datetime = CONN1_UPDATED,
    station_id: str = STATION_ID,
) -> Connector:
    return rows.connector(connector_id, ocpp_status, updated_at, station_id)


def connectors() -> list[Connector]:
    # Deliberately unsorted, with connector 0 and a row of another station mixed in.
    return [
        connector(2, "Charging", CONN2_UPDATED),
        connector(0, "Unavailable", datetime(2026, 12, 1, tzinfo=UTC)),
        connector(1, "Available", CONN1_UPDATED),
        connector(1, "Faulted", datetime(2026, 12, 2, tzinfo=UTC), station_id="OTHER"),
    ]


# --- Locations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "required", "not_in_location", "not_in_connector"),
    [
        # 2.2.1 names must not leak into 2.1.1 objects.
        (v211, (LOCATION_211, EVSE_211, CONNECTOR_211), "publish", "max_voltage"),
        # LocationType was dropped in 2.2 (parking_type is optional and unrelated).
        (v221, (LOCATION_221, EVSE_221, CONNECTOR_221), "type", "voltage"),
    ],
    ids=["2.1.1", "2.2.1"],
)
def test_location_has_every_required_field(
    module: Any,
    required: tuple[set[str], set[str], set[str]],
    not_in_location: str,
    not_in_connector: str,
) -> None:
    location_fields, evse_fields, connector_fields = required
    location = module.location_object(station(), connectors(), settings())

    assert missing(location_fields, location) == set()
    assert location["evses"]
    for evse in location["evses"]:
        assert missing(evse_fields, evse) == set()
        assert len(evse["connectors"]) == 1
        assert missing(connector_fields, evse["connectors"][0]) == set()
    assert not_in_connector not in location["evses"][0]["connectors"][0]
    assert not_in_location not in location


def test_location_identity_and_party() -> None:
    location_211 = v211.location_object(station(), connectors(), settings())
    location_221 = v221.location_object(station(), connectors(), settings())

    assert location_211["id"] == location_221["id"] == STATION_ID
    assert location_211["type"] == "UNKNOWN"
    assert (location_221["country_code"], location_221["party_id"]) == ("NL", "CGW")
    assert location_221["publish"] is True


@pytest.mark.parametrize("module", [v211, v221], ids=["2.1.1", "2.2.1"])
def test_connector_0_and_other_stations_are_not_evses(module: Any) -> None:
    location = module.location_object(station(), connectors(), settings())

    # Sorted by connector id, 0 left out, the OTHER station's connector 1 left out.
    assert [evse["uid"] for evse in location["evses"]] == [f"{STATION_ID}-1", f"{STATION_ID}-2"]


@pytest.mark.parametrize("module", [v211, v221], ids=["2.1.1", "2.2.1"])
def test_evse_connector_and_capabilities(module: Any) -> None:
    evse = module.location_object(station(), [connector(1)], settings())["evses"][0]
    ocpi_connector = evse["connectors"][0]

    assert "evse_id" not in evse
    assert evse["capabilities"] == ["REMOTE_START_STOP_CAPABLE", "RESERVABLE", "UNLOCK_CAPABLE"]
    assert ocpi_connector["id"] == "1"
    assert ocpi_connector["standard"] == "IEC_62196_T2"
    assert ocpi_connector["format"] == "SOCKET"
    assert ocpi_connector["power_type"] == "AC_3_PHASE"


def test_connector_ratings_per_version() -> None:
    c211 = v211.location_object(station(), [connector(1)], settings())["evses"][0]["connectors"][0]
    c221 = v221.location_object(station(), [connector(1)], settings())["evses"][0]["connectors"][0]

    # Both specs define the AC_3_PHASE voltage as line to neutral.
    assert (c211["voltage"], c211["amperage"]) == (230, 32)
    assert (c221["max_voltage"], c221["max_amperage"]) == (230, 32)


@pytest.mark.parametrize("module", [v211, v221], ids=["2.1.1", "2.2.1"])
@pytest.mark.parametrize(
    ("ocpp_status", "evse_status"),
    [
        ("Available", "AVAILABLE"),
        ("Preparing", "CHARGING"),
        ("Charging", "CHARGING"),
        ("SuspendedEV", "CHARGING"),
        ("SuspendedEVSE", "CHARGING"),
        ("Finishing", "CHARGING"),
        ("Reserved", "RESERVED"),
        ("Unavailable", "INOPERATIVE"),
        ("Faulted", "OUTOFORDER"),
        (None, "UNKNOWN"),
    ],
)
def test_evse_status_from_ocpp_status(
    module: Any, ocpp_status: str | None, evse_status: str
) -> None:
    location = module.location_object(station(), [connector(1, ocpp_status)], settings())

    assert location["evses"][0]["status"] == evse_status


@pytest.mark.parametrize("module", [v211, v221], ids=["2.1.1", "2.2.1"])
def test_location_last_updated_is_latest_connector_not_heartbeat(module: Any) -> None:
    location = module.location_object(station(), connectors(), settings())
    evses = {evse["uid"]: evse for evse in location["evses"]}

    # Connector 2 (naive, i.e. UTC) is the newest EVSE; connector 0 and last_seen don't count.
    assert location["last_updated"] == "2026-11-24T10:30:00Z"
    assert evses[f"{STATION_ID}-1"]["last_updated"] == "2026-11-23T08:00:00.123Z"
    assert evses[f"{STATION_ID}-1"]["connectors"][0]["last_updated"] == "2026-11-23T08:00:00.123Z"


@pytest.mark.parametrize("module", [v211, v221], ids=["2.1.1", "2.2.1"])
def test_location_without_evses_falls_back_to_first_seen(module: Any) -> None:
    location = module.location_object(station(), [connector(0)], settings())

    assert location["evses"] == []
    assert location["last_updated"] == "2026-01-05T09:00:00Z"


@pytest.mark.parametrize("module", [v211, v221], ids=["2.1.1", "2.2.1"])
def test_placeholder_address_is_valid(module: Any) -> None:
    location = module.location_object(station(), connectors(), settings())

    assert location["address"] == placeholders.ADDRESS == "unknown"
    assert location["city"] == "unknown"
    assert location["postal_code"] == "00000"
    assert location["country"] == "NLD"
    assert location["time_zone"] == "Europe/Amsterdam"
    for pattern in LATITUDE_RES:
        assert re.fullmatch(pattern, location["coordinates"]["latitude"])
    for pattern in LONGITUDE_RES:
        assert re.fullmatch(pattern, location["coordinates"]["longitude"])


@pytest.mark.parametrize(
    ("alpha2", "alpha3"),
    [("NL", "NLD"), ("FR", "FRA"), ("DE", "DEU"), ("BE", "BEL"), ("be", "BEL"), ("IT", "NLD")],
)
def test_country_alpha3(alpha2: str, alpha3: str) -> None:
    location = v221.location_object(
        station(), [], Settings(country_code=alpha2, party_id="CGW", currency="EUR")
    )

    assert location["country"] == alpha3


# --- Sessions --------------------------------------------------------------------------------


def test_session_211_has_every_required_field() -> None:
    body = v211.session_object(charging_session(), station(), connectors(), settings())

    assert missing(SESSION_211, body) == set()
    assert missing(LOCATION_211, body["location"]) == set()
    evse = body["location"]["evses"][0]
    assert missing(EVSE_211, evse) == set()
    assert missing(CONNECTOR_211, evse["connectors"][0]) == set()
    assert "start_date_time" not in body
    assert "cdr_token" not in body


def test_session_221_has_every_required_field() -> None:
    body = v221.session_object(charging_session(), station(), connectors(), settings())

    assert missing(SESSION_221, body) == set()
    assert missing(CDR_TOKEN_221, body["cdr_token"]) == set()
    assert "start_datetime" not in body
    assert "location" not in body
    assert "authorization_id" not in body


def test_session_211_embeds_only_its_own_evse() -> None:
    body = v211.session_object(
        charging_session(connector_id=2), station(), connectors(), settings()
    )
    location = body["location"]

    assert location["id"] == STATION_ID
    assert [evse["uid"] for evse in location["evses"]] == [f"{STATION_ID}-2"]
    assert location["evses"][0]["status"] == "CHARGING"
    assert location["evses"][0]["connectors"][0]["id"] == "1"


def test_session_211_without_connector_row_still_has_its_evse() -> None:
    body = v211.session_object(
        charging_session(connector_id=3), station(), connectors(), settings()
    )
    (evse,) = body["location"]["evses"]

    assert evse["uid"] == f"{STATION_ID}-3"
    assert evse["status"] == "UNKNOWN"
    assert missing(EVSE_211, evse) == set()


def test_session_221_points_at_location_evse_connector() -> None:
    body = v221.session_object(
        charging_session(connector_id=2), station(), connectors(), settings()
    )

    assert body["location_id"] == STATION_ID
    assert body["evse_uid"] == f"{STATION_ID}-2"
    assert body["connector_id"] == "1"
    assert (body["country_code"], body["party_id"]) == ("NL", "CGW")
    assert body["currency"] == "EUR"


@pytest.mark.parametrize("module", [v211, v221], ids=["2.1.1", "2.2.1"])
def test_session_kwh_rounded_to_four_decimals(module: Any) -> None:
    body = module.session_object(charging_session(), station(), connectors(), settings())

    assert body["kwh"] == 12.345


def test_session_end_only_when_ended() -> None:
    ended = datetime(2026, 11, 24, 12, 0, 0, 999999, tzinfo=UTC)
    open_211 = v211.session_object(charging_session(), station(), connectors(), settings())
    open_221 = v221.session_object(charging_session(), station(), connectors(), settings())
    done_211 = v211.session_object(
        charging_session(end_date_time=ended, status="COMPLETED"), station(), [], settings()
    )
    done_221 = v221.session_object(
        charging_session(end_date_time=ended, status="COMPLETED"), station(), [], settings()
    )

    assert "end_datetime" not in open_211
    assert "end_date_time" not in open_221
    assert done_211["end_datetime"] == "2026-11-24T12:00:00.999Z"
    assert done_221["end_date_time"] == "2026-11-24T12:00:00.999Z"
    assert done_211["status"] == done_221["status"] == "COMPLETED"


def test_every_datetime_is_ocpi_formatted() -> None:
    session = charging_session(
        end_date_time=datetime(2026, 11, 24, 12, 0, 0, 5000),  # naive, sub-second
        status="COMPLETED",
    )
    objects = [
        v211.location_object(station(), connectors(), settings()),
        v221.location_object(station(), connectors(), settings()),
        v211.session_object(session, station(), connectors(), settings()),
        v221.session_object(session, station(), connectors(), settings()),
    ]

    # Every object, EVSE and connector carries one; start/end in both sessions' spellings.
    check_ocpi_datetimes(objects, DATETIME_KEYS)
    assert objects[2]["start_datetime"] == "2026-11-24T10:31:05.250Z"
    assert objects[3]["end_date_time"] == "2026-11-24T12:00:00.005Z"


# --- Authorization ---------------------------------------------------------------------------


def test_211_echoes_authorization_id_gireve() -> None:
    with_ref = v211.session_object(
        charging_session(authorization_reference="aaa-vvv"), station(), connectors(), settings()
    )
    without = v211.session_object(charging_session(), station(), connectors(), settings())

    assert with_ref["authorization_id"] == "aaa-vvv"
    assert "authorization_reference" not in with_ref
    assert "authorization_id" not in without


def test_221_echoes_authorization_reference() -> None:
    with_ref = v221.session_object(
        charging_session(authorization_reference="CCCC-VVVV-BBBB"),
        station(),
        connectors(),
        settings(),
    )
    without = v221.session_object(charging_session(), station(), connectors(), settings())

    assert with_ref["authorization_reference"] == "CCCC-VVVV-BBBB"
    assert "authorization_id" not in with_ref
    assert "authorization_reference" not in without


@pytest.mark.parametrize(("stored", "expected_211", "expected_221"), AUTH_METHODS)
def test_auth_method_per_version(stored: str, expected_211: str, expected_221: str) -> None:
    session = charging_session(auth_method=stored)

    assert v211.session_object(session, station(), [], settings())["auth_method"] == expected_211
    assert v221.session_object(session, station(), [], settings())["auth_method"] == expected_221


@pytest.mark.parametrize(
    ("stored", "expected_211", "expected_221"),
    [
        ("RESERVATION", "PENDING", "RESERVATION"),
        ("PENDING", "PENDING", "PENDING"),
        ("ACTIVE", "ACTIVE", "ACTIVE"),
        ("COMPLETED", "COMPLETED", "COMPLETED"),
        ("INVALID", "INVALID", "INVALID"),
    ],
)
def test_session_status_per_version(stored: str, expected_211: str, expected_221: str) -> None:
    session = charging_session(status=stored)

    assert v211.session_object(session, station(), [], settings())["status"] == expected_211
    assert v221.session_object(session, station(), [], settings())["status"] == expected_221


TOKEN_211 = {
    "uid": "11111",
    "type": "OTHER",
    "auth_id": "FR-GIR-C12345678",
    "visual_number": "33333",
    "issuer": "issuer",
    "valid": True,
    "whitelist": "ALWAYS",
    "last_updated": "2020-01-21T06:43:13Z",
}
TOKEN_221 = {
    "country_code": "DE",
    "party_id": "EMS",
    "uid": "04A1B2C3D4",
    "type": "APP_USER",
    "contract_id": "DE-EMS-C00000001",
    "issuer": "eMSP",
    "valid": True,
    "whitelist": "NEVER",
    "last_updated": "2026-11-24T10:00:00Z",
}


@pytest.mark.parametrize(
    ("token", "auth_id"),
    [
        (TOKEN_211, "FR-GIR-C12345678"),
        (TOKEN_221, "DE-EMS-C00000001"),
        (None, "IDTAG0001"),
    ],
    ids=["2.1.1-token", "2.2.1-token", "no-token"],
)
def test_211_auth_id(token: dict[str, Any] | None, auth_id: str) -> None:
    body = v211.session_object(charging_session(token=token), station(), [], settings())

    assert body["auth_id"] == auth_id


def test_221_cdr_token_from_221_token() -> None:
    body = v221.session_object(
        charging_session(token=TOKEN_221), station(), [], settings(), party=party()
    )

    # The token names its own owner; the session's party must not override it.
    assert body["cdr_token"] == {
        "country_code": "DE",
        "party_id": "EMS",
        "uid": "04A1B2C3D4",
        "type": "APP_USER",
        "contract_id": "DE-EMS-C00000001",
    }


def test_221_cdr_token_from_211_token_takes_owner_from_party() -> None:
    body = v221.session_object(
        charging_session(token=TOKEN_211), station(), [], settings(), party=party()
    )

    assert body["cdr_token"] == {
        "country_code": "FR",
        "party_id": "GIR",
        "uid": "11111",
        "type": "OTHER",
        "contract_id": "FR-GIR-C12345678",
    }


def test_221_cdr_token_without_token() -> None:
    body = v221.session_object(charging_session(token=None), station(), [], settings())

    assert body["cdr_token"] == {
        "country_code": "NL",
        "party_id": "CGW",
        "uid": "IDTAG0001",
        "type": "RFID",
        "contract_id": "IDTAG0001",
    }


def test_both_versions_share_one_interface() -> None:
    for name in ("location_object", "session_object"):
        assert inspect.signature(getattr(v211, name)) == inspect.signature(getattr(v221, name))
