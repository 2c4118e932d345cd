"""OCPP payloads are checked by compiled schemas first (chargegate/ocpp/validation.py). What
must hold: the compiled check never accepts a payload the library's validator refuses, on every
OCPP 1.6 and 2.0.1 schema, and every refusal is still the library's own OCPP error."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ocpp.exceptions
import ocpp.messages
import pytest
from ocpp.exceptions import FormatViolationError, ProtocolError, TypeConstraintViolationError
from ocpp.messages import Call, CallResult, MessageType

import chargegate.ocpp  # noqa: F401  (installs the compiled validators)
from chargegate.ocpp.validation import FastFirst, get_validator

SCHEMAS = Path(ocpp.messages.__file__).parent


def _schemas() -> Iterator[tuple[str, str, int, str]]:
    for version, folder in (("1.6", "v16"), ("2.0.1", "v201")):
        for path in sorted((SCHEMAS / folder / "schemas").glob("*.json")):
            name = path.stem
            if name.endswith("Response"):
                yield version, name.removesuffix("Response"), MessageType.CallResult, name
            elif version == "1.6":
                yield version, name, MessageType.Call, name
            elif name.endswith("Request"):
                yield version, name.removesuffix("Request"), MessageType.Call, name


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = root["definitions"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _sample(schema: dict[str, Any], root: dict[str, Any]) -> Any:
    """A valid instance with every property present."""
    schema = _resolve(schema, root)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {k: _sample(v, root) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return [_sample(schema.get("items", {}), root)] * max(1, schema.get("minItems", 1))
    if kind == "string":
        if schema.get("format") == "date-time":
            return "2026-11-23T10:00:00Z"
        return "x" * min(5, schema.get("maxLength", 5))
    if kind in ("integer", "number"):
        return max(1, schema.get("minimum", 1))
    if kind == "boolean":
        return True
    return {}


def _mutations(instance: Any, schema: dict[str, Any], root: dict[str, Any]) -> Iterator[Any]:
    """The instance broken one way at a time, at the top and one level down."""
    schema = _resolve(schema, root)
    if not isinstance(instance, dict):
        return
    yield {**instance, "notInTheSchema": 1}
    for name, sub in schema.get("properties", {}).items():
        sub = _resolve(sub, root)
        yield {k: v for k, v in instance.items() if k != name}
        yield {**instance, name: None}
        yield {**instance, name: "a-string" if sub.get("type") != "string" else 7}
        if "maxLength" in sub:
            yield {**instance, name: "y" * (sub["maxLength"] + 1)}
        if "enum" in sub:
            yield {**instance, name: "NotAnEnumValue"}
        if "minimum" in sub:
            yield {**instance, name: sub["minimum"] - 1}
        for broken in _mutations(instance[name], sub, root):
            yield {**instance, name: broken}
        if sub.get("type") == "array" and isinstance(instance[name], list):
            yield {**instance, name: []}
            for broken in _mutations(instance[name][0], sub.get("items", {}), root):
                yield {**instance, name: [broken]}


@pytest.mark.parametrize(("version", "action", "message_type", "name"), list(_schemas()))
def test_the_compiled_check_never_accepts_what_the_library_refuses(
    version: str, action: str, message_type: int, name: str
) -> None:
    validator = get_validator(message_type, action, version)
    assert isinstance(validator, FastFirst)
    root = validator.library.schema
    valid = _sample(root, root)
    assert validator.library.is_valid(valid), f"test sample for {name} is itself invalid"
    assert validator.accepts(valid)
    checked = refused = 0
    for payload in _mutations(valid, root, root):
        before = copy.deepcopy(payload)
        library_accepts = validator.library.is_valid(payload)
        if validator.accepts(payload):
            assert library_accepts, f"{name}: compiled check accepted {json.dumps(payload)}"
        refused += not library_accepts
        checked += 1
        assert payload == before  # no defaults filled in
    assert checked == 0 or refused > 0


def _call(action: str, payload: dict[str, Any]) -> Call:
    return Call("id-1", action, payload)


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (_call("Heartbeat", {"extra": 1}), FormatViolationError),
        (_call("StatusNotification", {"connectorId": "1", "errorCode": "NoError",
                                      "status": "Available"}), TypeConstraintViolationError),
        (_call("Authorize", {}), ProtocolError),
        (_call("Authorize", {"idTag": "x" * 21}), TypeConstraintViolationError),
    ],
    ids=["extra-property", "wrong-type", "missing-required", "too-long"],
)  # fmt: skip
def test_refusals_are_the_librarys_ocpp_errors(message: Call, error: type[Exception]) -> None:
    with pytest.raises(error):
        ocpp.messages._validate_payload(message, "1.6")


def test_a_valid_frame_passes_and_keeps_its_payload() -> None:
    result = CallResult("id-1", {"status": "Accepted"})
    result.action = "RemoteStartTransaction"
    ocpp.messages._validate_payload(result, "1.6")
    assert result.payload == {"status": "Accepted"}


def _remote_start(limit: Any) -> Call:
    period = {"startPeriod": 0, "limit": limit}
    profile = {
        "chargingProfileId": 1,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [period]},
    }
    return _call("RemoteStartTransaction", {"idTag": "TAG", "chargingProfile": profile})


def test_decimal_limits_still_take_the_librarys_decimal_path() -> None:
    """1.6 limits are multiples of 0.1: 21.4 passes only when read as a Decimal."""
    ocpp.messages._validate_payload(_remote_start(21.4), "1.6")
    with pytest.raises(FormatViolationError):
        ocpp.messages._validate_payload(_remote_start(21.45), "1.6")


def test_a_payload_without_floats_is_validated_untouched() -> None:
    call = _remote_start(32)
    ocpp.messages._validate_payload(call, "1.6")
    assert call.payload["chargingProfile"]["chargingSchedule"]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 32}
    ]
    with pytest.raises(TypeConstraintViolationError):
        ocpp.messages._validate_payload(_call("RemoteStartTransaction", {"idTag": 7}), "1.6")


def test_an_action_without_a_schema_is_the_librarys_not_implemented() -> None:
    with pytest.raises(ocpp.exceptions.NotImplementedError):
        ocpp.messages._validate_payload(_call("FlyToTheMoon", {}), "1.6")
