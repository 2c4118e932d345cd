"""The pure rules behind station admission: ids, passwords, their hashes, Basic headers, and the
masking of passwords in OCPP payloads."""

from __future__ import annotations

import base64

import pytest

from chargegate.domain.secret_configuration import MASK, mask_passwords
from chargegate.domain.station_credentials import (
    InvalidPassword,
    InvalidStationId,
    authorization_key_of,
    basic_credentials,
    check_password,
    check_station_id,
    hash_password,
    new_password,
    verify_password,
)


@pytest.mark.parametrize("station_id", ["CP-1", "a.b_c-d", "x" * 48, "..a"])
def test_url_safe_ids_of_at_most_48_characters_are_valid(station_id: str) -> None:
    assert check_station_id(station_id) == station_id


@pytest.mark.parametrize("station_id", ["", ".", "..", "*", "CP:1", "CP 1", "x" * 49, "é", "a/b"])
def test_other_ids_are_invalid(station_id: str) -> None:
    with pytest.raises(InvalidStationId):
        check_station_id(station_id)


@pytest.mark.parametrize("password", ["x" * 15, "x" * 41, "sixteen-chars-ok!", "with space 123456"])
def test_passwords_outside_the_ocpp_password_string_are_refused(password: str) -> None:
    with pytest.raises(InvalidPassword):
        check_password(password)


def test_hashes_are_salted_self_describing_and_verify() -> None:
    password = new_password()
    assert len(password) == 40 and check_password(password) == password
    first, second = hash_password(password.encode()), hash_password(password.encode())
    assert first != second and first.startswith("scrypt$n=16384,r=8,p=1$")
    assert password not in first
    assert verify_password(password.encode(), first)
    assert not verify_password(b"another-password-01", first)
    assert not verify_password(password.encode(), "md5$whatever")


def test_a_1_6_key_matches_as_bytes_and_as_hex_digits_in_either_case() -> None:
    key = "0001020304050607FFFFFFFFFFFFFFFFFFFFFFFF"  # OCPP-J 1.6's example
    stored = hash_password(key.encode())
    assert verify_password(bytes.fromhex(key), stored)
    assert verify_password(key.lower().encode(), stored)
    assert authorization_key_of(key) == key
    assert authorization_key_of("sixteen-chars-ok") == b"sixteen-chars-ok".hex()
    with pytest.raises(InvalidPassword):
        authorization_key_of("a-password-of-21-char")


def test_basic_credentials_keep_the_password_as_bytes() -> None:
    raw = base64.b64encode(b"AL1000:\x00\x01\x02\xff").decode()
    assert basic_credentials(f"Basic {raw}") == ("AL1000", b"\x00\x01\x02\xff")
    assert basic_credentials(f"basic {raw}") == ("AL1000", b"\x00\x01\x02\xff")
    for header in (
        None,
        "",
        "Bearer x",
        "Basic !!",
        "Basic " + base64.b64encode(b"nocolon").decode(),
    ):
        assert basic_credentials(header) is None


def test_passwords_are_masked_in_both_versions_payloads() -> None:
    v16 = {"key": "AuthorizationKey", "value": "00112233"}
    assert mask_passwords(v16) == {"key": "AuthorizationKey", "value": MASK}
    report = {
        "configurationKey": [
            {"key": "AuthorizationKey", "readonly": False, "value": "secret"},
            {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
        ]
    }
    masked = mask_passwords(report)["configurationKey"]
    assert masked[0]["value"] == MASK and masked[1]["value"] == "300"
    v201 = {
        "setVariableData": [
            {
                "attributeValue": "p4ssword-of-16-chars",
                "component": {"name": "SecurityCtrlr"},
                "variable": {"name": "BasicAuthPassword"},
            }
        ]
    }
    assert mask_passwords(v201)["setVariableData"][0]["attributeValue"] == MASK
    notify = {
        "reportData": [
            {
                "component": {"name": "SecurityCtrlr"},
                "variable": {"name": "BasicAuthPassword"},
                "variableAttribute": [{"value": "p4ssword-of-16-chars"}],
            }
        ]
    }
    assert mask_passwords(notify)["reportData"][0]["variableAttribute"][0]["value"] == MASK
