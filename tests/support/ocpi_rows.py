"""In-memory rows (no database) the OCPI object builders are tested with, and checks shared by
the Location/Session and the CDR object tests."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from chargegate.settings import Settings
from chargegate.store.models import ChargingSession, Connector, Party, Station

STATION_ID = "CP-AMS-01"  # contains a dash, like many real ids
SESSION_ID = "0f4a1c9e-5b8e-4a51-9a5e-1d2c3b4a5f60"
FIRST_SEEN = datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)
START = datetime(2026, 11, 24, 10, 31, 5, 250000, tzinfo=UTC)

DATETIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z$")

# The stored auth_method, and what the 2.1.1 and the 2.2.1 objects say for it.
AUTH_METHODS = [
    ("COMMAND", "AUTH_REQUEST", "COMMAND"),
    ("AUTH_REQUEST", "AUTH_REQUEST", "AUTH_REQUEST"),
    ("WHITELIST", "WHITELIST", "WHITELIST"),
]


def settings() -> Settings:
    return Settings(country_code="NL", party_id="CGW", currency="EUR")


def station(station_id: str = STATION_ID, last_seen: datetime = FIRST_SEEN) -> Station:
    return Station(
        id=station_id,
        ocpp_version="1.6",
        vendor="Acme",
        model="AC22",
        serial_number="SN1",
        firmware_version="1.0",
        locked=False,
        first_seen=FIRST_SEEN,
        last_seen=last_seen,
        last_boot=FIRST_SEEN,
    )


def connector(
    connector_id: int,
    ocpp_status: str | None,
    updated_at: datetime,
    station_id: str = STATION_ID,
) -> Connector:
    return Connector(
        station_id=station_id,
        connector_id=connector_id,
        uuid=f"00000000-0000-0000-0000-{station_id[-2:]}{connector_id:010d}",
        ocpp_status=ocpp_status,
        error_code="NoError",
        locked=False,
        updated_at=updated_at,
    )


def charging_session(**overrides: Any) -> ChargingSession:
    """An ACTIVE session on connector 2 of STATION_ID, with `overrides`."""
    values: dict[str, Any] = {
        "pk": 15,
        "id": SESSION_ID,
        "station_id": STATION_ID,
        "connector_id": 2,
        "transaction_id": "15",
        "party_id": 7,
        "command_id": "cmd-1",
        "id_tag": "IDTAG0001",
        "token": None,
        "auth_method": "WHITELIST",
        "authorization_reference": None,
        "meter_start": 1000,
        "meter_last": 13345,
        "kwh": 12.345000000001,
        "status": "ACTIVE",
        "stop_reason": None,
        "start_date_time": START,
        "end_date_time": None,
        "last_updated": datetime(2026, 11, 24, 11, 0, 0, tzinfo=UTC),
    }
    values.update(overrides)
    return ChargingSession(**values)


def party() -> Party:
    return Party(
        id=7,
        role="EMSP",
        country_code="FR",
        party_id="GIR",
        name="Some eMSP",
        profile=None,
        token_a_hash=None,
        token_c_hash=None,
        token_b="b",
        versions_url="https://emsp.example/versions",
        ocpi_version="2.2.1",
        endpoints={},
        business_details=None,
        state="REGISTERED",
        created_at=FIRST_SEEN,
        registered_at=FIRST_SEEN,
    )


def missing(required: set[str], obj: dict[str, Any]) -> set[str]:
    return {key for key in required if obj.get(key) is None}


def datetimes(obj: Any, keys: set[str]) -> Iterator[tuple[str, Any]]:
    """Every (key, value) in `obj`, at any depth, whose key is one of `keys`."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in keys:
                yield key, value
            yield from datetimes(value, keys)
    elif isinstance(obj, list):
        for item in obj:
            yield from datetimes(item, keys)


def check_ocpi_datetimes(objects: Iterable[dict[str, Any]], keys: set[str]) -> None:
    """Each of `keys` is found in `objects`, and every value of them is an OCPI DateTime."""
    found = [(key, value) for obj in objects for key, value in datetimes(obj, keys)]

    assert {key for key, _ in found} == keys
    for key, value in found:
        assert isinstance(value, str), key
        assert DATETIME_RE.match(value), (key, value)
        assert len(value) <= 25, (key, value)
