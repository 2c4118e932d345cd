"""ocpp/payload_case.py converts payloads exactly as the `ocpp` library's own functions do."""

from __future__ import annotations

import dataclasses
import inspect
from datetime import UTC
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ocpp.charge_point import (
    camel_to_snake_case,
    remove_nones,
    serialize_as_dict,
    snake_to_camel_case,
)
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from chargegate.domain import station_calls as sc
from chargegate.ocpp import v16_translation, v201_translation
from chargegate.ocpp.payload_case import from_wire, to_wire


def _library_to_wire(payload: Any) -> Any:
    return remove_nones(snake_to_camel_case(serialize_as_dict(payload)))


_CALLS = [
    cls
    for module in (call16, call201)
    for _, cls in inspect.getmembers(module, dataclasses.is_dataclass)
    if cls.__module__ == module.__name__
]

# Keys as the schemas spell them, and the library's special cases (SoC, V2X, URL, CSMS).
_SNAKE_KEYS = st.sampled_from(
    [
        "id_tag",
        "connector_id",
        "charging_profile",
        "charging_schedule_period",
        "start_period",
        "limit",
        "state_of_charge",
        "soc",
        "ev_min_v2x_energy_request",
        "ocpp_csms_url",
        "responder_url",
        "csms_root_certificate",
        "soc_limit_reached",
        "custom_data",
        "vendor_id",
    ]
)
_LEAVES = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
_SNAKE_JSON = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_SNAKE_KEYS, inner, max_size=4),
    max_leaves=12,
)
_CAMEL_KEYS = st.sampled_from(
    [
        "idTag",
        "connectorId",
        "chargingProfile",
        "SoC",
        "evMinV2XEnergyRequest",
        "ocppCSMSURL",
        "responderURL",
        "CSMSRootCertificate",
        "SOCLimitReached",
    ]
)
_CAMEL_JSON = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(_CAMEL_KEYS | st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@pytest.mark.parametrize("cls", _CALLS, ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_call_payload_goes_out_as_the_library_sends_it(cls: type, data: Any) -> None:
    # Any field may hold nested dicts and lists with None in them, as dict-typed fields do.
    values = {
        field.name: data.draw(_SNAKE_JSON if field.name != "custom_data" else st.none())
        for field in dataclasses.fields(cls)
    }
    payload = cls(**values)
    assert to_wire(payload) == _library_to_wire(payload)


_REQUESTS = st.one_of(
    st.builds(
        sc.RemoteStart,
        connector_id=st.none() | st.integers(1, 4),
        id_token=st.text(min_size=1, max_size=20),
        token_type=st.sampled_from(["RFID", "AD_HOC_USER", "APP_USER", "OTHER"]),
        remote_start_id=st.none() | st.integers(1, 10**6),
    ),
    st.builds(sc.RemoteStop, transaction_id=st.integers(1, 10**6).map(str)),
    st.builds(
        sc.Reserve,
        connector_id=st.integers(0, 4),
        expiry_date=st.datetimes(timezones=st.just(UTC)),
        id_token=st.text(min_size=1, max_size=20),
        reservation_id=st.integers(1, 10**6),
    ),
    st.builds(sc.CancelReservation, reservation_id=st.integers(1, 10**6)),
    st.builds(sc.Unlock, connector_id=st.integers(1, 4)),
    st.builds(sc.GetConfiguration, keys=st.lists(st.text(min_size=1), max_size=3).map(tuple)),
    st.builds(sc.ChangeConfiguration, key=st.text(min_size=1), value=st.text()),
    st.builds(sc.Reset, type=st.sampled_from(["Hard", "Soft"])),
    st.just(sc.ClearCache()),
)


@given(_REQUESTS)
def test_what_the_gateway_sends_is_what_the_library_would(request: sc.StationRequest) -> None:
    for table in (v16_translation, v201_translation):
        payload = table.to_call(request)
        assert to_wire(payload) == _library_to_wire(payload)


@given(_CAMEL_JSON)
def test_answers_are_read_as_the_library_reads_them(payload: Any) -> None:
    assert from_wire(payload) == camel_to_snake_case(payload)


def test_keys_the_library_spells_its_own_way() -> None:
    sent = to_wire(
        call201.SetNetworkProfile(
            configuration_slot=1,
            connection_data={"ocpp_csms_url": "wss://x", "messages_timeout": 30},
        )
    )
    assert sent == {
        "configurationSlot": 1,
        "connectionData": {"ocppCsmsUrl": "wss://x", "messagesTimeout": 30},
    }
    assert from_wire({"SOCLimitReached": True, "evMinV2XEnergyRequest": 1}) == {
        "soc_limit_reached": True,
        "ev_min_v2x_energy_request": 1,
    }
