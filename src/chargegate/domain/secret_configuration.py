"""Configuration keys that hold a station's Basic auth password, and masking their values
wherever OCPP payloads are kept (communication log, operator request records)."""

from __future__ import annotations

from typing import Any

# OCPP 1.6 (security whitepaper) and 2.0.1 (SecurityCtrlr), as operators name them.
AUTHORIZATION_KEY = "AuthorizationKey"
BASIC_AUTH_PASSWORD = "SecurityCtrlr.BasicAuthPassword"
_SECRET_NAMES = frozenset({AUTHORIZATION_KEY, "BasicAuthPassword"})
MASK = "********"


def is_password_key(key: str) -> bool:
    """Whether a configuration key (1.6 name or 2.0.1 `Component.Variable`) sets the Basic auth
    password."""
    return key in _SECRET_NAMES or key == BASIC_AUTH_PASSWORD


def may_hold_password(raw: str) -> bool:
    """Cheap test of a raw frame before `mask_passwords` walks it."""
    return AUTHORIZATION_KEY in raw or "BasicAuthPassword" in raw


def mask_passwords(payload: Any) -> Any:
    """`payload` with every password value replaced by MASK: 1.6 `{key, value}` entries
    (ChangeConfiguration, GetConfiguration), 2.0.1 entries naming the variable
    (SetVariables, GetVariables, NotifyReport). Other values are returned as they were."""
    if isinstance(payload, list):
        return [mask_passwords(item) for item in payload]
    if not isinstance(payload, dict):
        return payload
    masked = {name: mask_passwords(value) for name, value in payload.items()}
    if masked.get("key") in _SECRET_NAMES and "value" in masked:
        masked["value"] = MASK
    variable = masked.get("variable")
    if isinstance(variable, dict) and variable.get("name") in _SECRET_NAMES:
        if "attributeValue" in masked:
            masked["attributeValue"] = MASK
        for attribute in masked.get("variableAttribute") or []:
            if isinstance(attribute, dict) and "value" in attribute:
                attribute["value"] = MASK
    return masked
