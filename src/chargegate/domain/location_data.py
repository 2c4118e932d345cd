"""A Location's real data as the operator gives it (the site, and per connector its plug), and
the rule that decides whether a station is served as an OCPI Location at all.

Validated once, on the way in (CLI, operator API, import), so that what is stored renders as a
valid object in OCPI 2.1.1 and 2.2.1 alike; the limits below are those two specs' (the stricter
where they differ). Pydantic is used as a pure validation library here: no I/O."""

from __future__ import annotations

import re
import zoneinfo
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from enum import StrEnum
from functools import cache
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .evse import MAX_CONNECTOR_ID

M = TypeVar("M", bound=BaseModel)


def every_station_served(ocpp_admission: str) -> bool:
    """The open (development) admission mode serves every station as a Location."""
    return ocpp_admission == "open"


def served_as_location(published: bool, ocpp_admission: str) -> bool:
    """Whether a station is an OCPI Location: published by an operator, or any station in the
    open (development) admission mode. Decided when asked, so switching to `registered`
    withdraws what the operator never published."""
    return published or every_station_served(ocpp_admission)


class LocationDataError(ValueError):
    """Location data that cannot be published; `problems` names each field and what is wrong."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


# --- enumerations (mod_locations of both versions) --------------------------------------------


class ConnectorStandard(StrEnum):
    """OCPI 2.1.1 ConnectorType. 2.2.1 adds more (GB/T, NEMA, pantographs…), which a 2.1.1
    peer could not be sent; as we serve both versions, only what both define is accepted."""

    CHADEMO = "CHADEMO"
    DOMESTIC_A = "DOMESTIC_A"
    DOMESTIC_B = "DOMESTIC_B"
    DOMESTIC_C = "DOMESTIC_C"
    DOMESTIC_D = "DOMESTIC_D"
    DOMESTIC_E = "DOMESTIC_E"
    DOMESTIC_F = "DOMESTIC_F"
    DOMESTIC_G = "DOMESTIC_G"
    DOMESTIC_H = "DOMESTIC_H"
    DOMESTIC_I = "DOMESTIC_I"
    DOMESTIC_J = "DOMESTIC_J"
    DOMESTIC_K = "DOMESTIC_K"
    DOMESTIC_L = "DOMESTIC_L"
    IEC_60309_2_single_16 = "IEC_60309_2_single_16"
    IEC_60309_2_three_16 = "IEC_60309_2_three_16"
    IEC_60309_2_three_32 = "IEC_60309_2_three_32"
    IEC_60309_2_three_64 = "IEC_60309_2_three_64"
    IEC_62196_T1 = "IEC_62196_T1"
    IEC_62196_T1_COMBO = "IEC_62196_T1_COMBO"
    IEC_62196_T2 = "IEC_62196_T2"
    IEC_62196_T2_COMBO = "IEC_62196_T2_COMBO"
    IEC_62196_T3A = "IEC_62196_T3A"
    IEC_62196_T3C = "IEC_62196_T3C"
    TESLA_R = "TESLA_R"
    TESLA_S = "TESLA_S"


ConnectorFormat = Literal["SOCKET", "CABLE"]
# Both versions' PowerType (2.3.0 adds AC_2_PHASE and AC_2_PHASE_SPLIT; we serve neither).
PowerType = Literal["AC_1_PHASE", "AC_3_PHASE", "DC"]
# 2.2.1 ParkingType. 2.1.1 has LocationType instead (locations.location_type_211 maps it).
ParkingType = Literal[
    "ALONG_MOTORWAY",
    "PARKING_GARAGE",
    "PARKING_LOT",
    "ON_DRIVEWAY",
    "ON_STREET",
    "UNDERGROUND_GARAGE",
]
# 2.1.1 LocationType values a ParkingType names alike; the others are OTHER, none UNKNOWN.
LOCATION_TYPES_211 = {"ON_STREET", "PARKING_GARAGE", "UNDERGROUND_GARAGE", "PARKING_LOT"}
# 2.1.1 Facility; 2.2.1 adds the four in FACILITIES_221_ONLY, which a 2.1.1 object leaves out.
FACILITIES_211 = (
    "HOTEL RESTAURANT CAFE MALL SUPERMARKET SPORT RECREATION_AREA NATURE MUSEUM BUS_STOP "
    "TAXI_STAND TRAIN_STATION AIRPORT CARPOOL_PARKING FUEL_STATION WIFI"
).split()
FACILITIES_221_ONLY = ["BIKE_SHARING", "TRAM_STOP", "METRO_STATION", "PARKING_LOT"]
Facility = Literal[
    "HOTEL",
    "RESTAURANT",
    "CAFE",
    "MALL",
    "SUPERMARKET",
    "SPORT",
    "RECREATION_AREA",
    "NATURE",
    "MUSEUM",
    "BIKE_SHARING",
    "BUS_STOP",
    "TAXI_STAND",
    "TRAM_STOP",
    "METRO_STATION",
    "TRAIN_STATION",
    "AIRPORT",
    "PARKING_LOT",
    "CARPOOL_PARKING",
    "FUEL_STATION",
    "WIFI",
]

# --- coordinates --------------------------------------------------------------------------------

# What we take: a decimal with up to seven decimals (2.2.1's most). What we store and send: six,
# the one form both versions' regexes accept (2.1.1 `-?[0-9]{1,2}\.[0-9]{6}` and
# `-?[0-9]{1,3}\.[0-9]{6}`; 2.2.1 five to seven). Six decimals are 0.11 m.
_DECIMAL_IN = re.compile(r"-?[0-9]{1,3}(\.[0-9]{1,7})?")
LATITUDE_211 = re.compile(r"-?[0-9]{1,2}\.[0-9]{6}")
LONGITUDE_211 = re.compile(r"-?[0-9]{1,3}\.[0-9]{6}")
_SIX = Decimal("0.000001")


def _degrees(value: Any, limit: int, name: str, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str):
        raise ValueError(f'{name} must be a string such as "52.373170" (OCPI sends it as one)')
    if not _DECIMAL_IN.fullmatch(value.strip()):
        raise ValueError(
            f"{name} {value!r} is not a decimal number of degrees with at most 7 decimals"
        )
    try:
        degrees = Decimal(value.strip())
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only decimals
        raise ValueError(f"{name} {value!r} is not a number") from exc
    if not -limit <= degrees <= limit:
        raise ValueError(f"{name} {value} is outside -{limit}..{limit}")
    text = str(degrees.quantize(_SIX, rounding=ROUND_HALF_EVEN))
    assert pattern.fullmatch(text), text  # the form both versions accept
    return text


class Coordinates(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    latitude: str
    longitude: str

    @field_validator("latitude", mode="before")
    @classmethod
    def _latitude(cls, value: Any) -> str:
        return _degrees(value, 90, "latitude", LATITUDE_211)

    @field_validator("longitude", mode="before")
    @classmethod
    def _longitude(cls, value: Any) -> str:
        return _degrees(value, 180, "longitude", LONGITUDE_211)


# --- the site -----------------------------------------------------------------------------------


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


_COUNTRY = re.compile(r"[A-Z]{3}")


class Site(BaseModel):
    """The Location's own fields. Lengths are the specs' string(n) limits."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    name: str | None = Field(None, min_length=1, max_length=255)
    address: str = Field(min_length=1, max_length=45)
    city: str = Field(min_length=1, max_length=45)
    # Optional in 2.2.1 but required in 2.1.1, which we also serve.
    postal_code: str = Field(min_length=1, max_length=10)
    # 2.2.1 only (2.1.1 has no state field; its objects leave it out).
    state: str | None = Field(None, min_length=1, max_length=20)
    country: str
    coordinates: Coordinates
    time_zone: str
    parking_type: ParkingType | None = None
    facilities: list[Facility] = Field(default_factory=list)
    # Open around the clock: opening_times {"twentyfourseven": true}. None says nothing.
    twentyfourseven: bool | None = None

    @field_validator("country", mode="before")
    @classmethod
    def _country(cls, value: Any) -> str:
        text = value.strip().upper() if isinstance(value, str) else value
        if not isinstance(text, str) or not _COUNTRY.fullmatch(text):
            raise ValueError(
                f"country {value!r} must be an ISO 3166-1 alpha-3 code such as NLD, FRA, DEU"
            )
        return text

    @field_validator("time_zone", mode="before")
    @classmethod
    def _time_zone(cls, value: Any) -> str:
        if not isinstance(value, str) or value.strip() not in _time_zones():
            raise ValueError(
                f"time_zone {value!r} is not an IANA time zone such as Europe/Amsterdam"
            )
        return value.strip()


class ConnectorSpec(BaseModel):
    """One OCPP connector's plug, which is one OCPI EVSE with one Connector. Voltage is line
    to neutral for AC_3_PHASE (both specs), e.g. 230 for a 400 V three-phase supply."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    standard: ConnectorStandard
    format: ConnectorFormat
    power_type: PowerType
    max_voltage: int = Field(gt=0, le=2000)
    max_amperage: int = Field(gt=0, le=2000)
    # 2.2.1 only, in W; 2.1.1 objects leave it out.
    max_electric_power: int | None = Field(None, gt=0, le=2_000_000)
    # The EVSE's physical_reference (string(16)), e.g. the number painted on it.
    physical_reference: str | None = Field(None, min_length=1, max_length=16)


def parse_site(data: Any, where: str = "site") -> Site:
    """`data` as a Site, or LocationDataError naming every problem."""
    return _parse(Site, data, where)


def parse_connector_spec(data: Any, where: str = "connector") -> ConnectorSpec:
    return _parse(ConnectorSpec, data, where)


def parse_connector_specs(data: Any, where: str = "connectors") -> dict[int, ConnectorSpec]:
    """`{connector id: spec}` (ids as ints or digit strings, as JSON objects have them)."""
    if not isinstance(data, dict):
        raise LocationDataError([f"{where}: an object of connector id to its data is expected"])
    problems: list[str] = []
    specs: dict[int, ConnectorSpec] = {}
    for key, value in data.items():
        connector_id = _connector_id(key)
        if connector_id is None:
            problems.append(
                f"{where}.{key}: a connector id is a number from 1 to {MAX_CONNECTOR_ID}"
            )
            continue
        try:
            specs[connector_id] = parse_connector_spec(value, f"{where}.{connector_id}")
        except LocationDataError as exc:
            problems += exc.problems
    if problems:
        raise LocationDataError(problems)
    return specs


def _connector_id(key: Any) -> int | None:
    if isinstance(key, str) and key.isdigit():
        key = int(key)
    if isinstance(key, int) and not isinstance(key, bool) and 1 <= key <= MAX_CONNECTOR_ID:
        return key
    return None


def _parse(model: type[M], data: Any, where: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise LocationDataError(problems_of(exc, where)) from None


def problems_of(exc: ValidationError, where: str) -> list[str]:
    """One line per error: the field's path and pydantic's message, made plain."""
    problems = []
    for error in exc.errors(include_url=False):
        path = ".".join(str(part) for part in (where, *error["loc"]) if part != "")
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "not a field we know (typo?)"
        problems.append(f"{path}: {message}")
    return problems
