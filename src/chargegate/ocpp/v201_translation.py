"""OCPP 2.0.1 translation table: domain station requests → 2.0.1 calls, answers → outcomes."""

from __future__ import annotations

from typing import Any

from ocpp.v201 import call, call_result, datatypes

from chargegate.domain import station_calls as sc
from chargegate.domain.clock import ocpi_datetime
from chargegate.domain.station_calls import Outcome

# OCPI token type → 2.0.1 IdTokenType (docs/decisions.md#token-types-in-ocpp-201).
ID_TOKEN_TYPE = {
    "RFID": "ISO14443",
    "APP_USER": "Central",
    "AD_HOC_USER": "Central",
    "OTHER": "Central",
}

# 1.6's reset words for operators, mapped to 2.0.1's. Not exact: OnIdle waits for running
# transactions to end, where a 1.6 Soft reset stops them.
RESET_TYPE = {"Hard": "Immediate", "Soft": "OnIdle"}

STATUS_OUTCOME: dict[str, Outcome] = {
    "Accepted": Outcome.ACCEPTED,
    "Unlocked": Outcome.ACCEPTED,
    "Scheduled": Outcome.ACCEPTED,
    "Rejected": Outcome.REJECTED,
    "Occupied": Outcome.OCCUPIED,
    "Faulted": Outcome.FAULTED,
    "Unavailable": Outcome.UNAVAILABLE,
    "UnlockFailed": Outcome.UNLOCK_FAILED,
    "OngoingAuthorizedTransaction": Outcome.ONGOING_TRANSACTION,
    "UnknownConnector": Outcome.UNKNOWN_CONNECTOR,
    "RebootRequired": Outcome.REBOOT_REQUIRED,
    "NotSupported": Outcome.NOT_SUPPORTED,
    "NotSupportedAttributeType": Outcome.NOT_SUPPORTED,
    "UnknownComponent": Outcome.NOT_SUPPORTED,
    "UnknownVariable": Outcome.NOT_SUPPORTED,
}

# The one connector of each EVSE (we present EVSEs with a single connector).
CONNECTOR_OF_EVSE = 1


def id_token(value: str, token_type: str) -> datatypes.IdTokenType:
    return datatypes.IdTokenType(id_token=value, type=ID_TOKEN_TYPE.get(token_type, "Central"))


def split_key(key: str) -> tuple[str, str]:
    """`Component.Variable` (the form operators use for 2.0.1 keys) → its two names."""
    component, sep, variable = key.partition(".")
    return (component, variable) if sep and variable else ("", key)


def _variable(key: str) -> dict[str, Any]:
    component, variable = split_key(key)
    return {"component": {"name": component}, "variable": {"name": variable}}


def to_call(request: sc.StationRequest) -> Any:
    match request:
        case sc.RemoteStart():
            return call.RequestStartTransaction(
                id_token=id_token(request.id_token, request.token_type),
                remote_start_id=request.remote_start_id or 0,
                evse_id=request.connector_id,
            )
        case sc.RemoteStop():
            return call.RequestStopTransaction(transaction_id=request.transaction_id)
        case sc.Reserve():
            return call.ReserveNow(
                id=request.reservation_id,
                expiry_date_time=ocpi_datetime(request.expiry_date),
                id_token=id_token(request.id_token, request.token_type),
                evse_id=request.connector_id or None,
            )
        case sc.CancelReservation():
            return call.CancelReservation(reservation_id=request.reservation_id)
        case sc.Unlock():
            return call.UnlockConnector(
                evse_id=request.connector_id, connector_id=CONNECTOR_OF_EVSE
            )
        case sc.Reset():
            return call.Reset(type=RESET_TYPE[request.type])
        case sc.GetConfiguration() if request.keys:
            return call.GetVariables(get_variable_data=[_variable(k) for k in request.keys])
        case sc.GetConfiguration():
            # No "all keys" form of GetVariables: the report arrives later in NotifyReport.
            return call.GetBaseReport(request_id=1, report_base="ConfigurationInventory")
        case sc.ChangeConfiguration():
            return call.SetVariables(
                set_variable_data=[{"attribute_value": request.value, **_variable(request.key)}]
            )
        case sc.ClearCache():
            return call.ClearCache()
    raise TypeError(f"OCPP 2.0.1 has no translation for {type(request).__name__}")


def _key(entry: dict[str, Any]) -> str:
    component = entry.get("component", {}).get("name", "")
    variable = entry.get("variable", {}).get("name", "")
    return f"{component}.{variable}" if component else variable


def to_reply(result: Any, unique_id: str | None = None) -> sc.StationReply:
    data: dict[str, Any] = {}
    status: str | None = getattr(result, "status", None)
    if isinstance(result, call_result.GetVariables):
        known, unknown = [], []
        for entry in result.get_variable_result:
            if entry["attribute_status"] == "Accepted":
                known.append(
                    {"key": _key(entry), "readonly": False, "value": entry.get("attribute_value")}
                )
            else:
                unknown.append(_key(entry))
        data = {"configurationKey": known, "unknownKey": unknown}
        status = "Accepted"
    elif isinstance(result, call_result.SetVariables):
        status = result.set_variable_result[0]["attribute_status"]
    outcome = STATUS_OUTCOME.get(str(status), Outcome.REJECTED) if status else Outcome.ACCEPTED
    return sc.StationReply(
        outcome=outcome, status=str(status) if status else None, data=data, unique_id=unique_id
    )
