"""OCPP 1.6J translation table: domain station requests → 1.6 calls, 1.6 answers → outcomes."""

from __future__ import annotations

from typing import Any

from ocpp.v16 import call, call_result

from chargegate.domain import station_calls as sc
from chargegate.domain.clock import ocpi_datetime
from chargegate.domain.station_calls import Outcome

ID_TAG_MAX = 20  # OCPP 1.6 IdToken is CiString20Type

# The station's status word → what it means. One table for every action: 1.6 never gives one
# word two meanings across the command actions we send.
STATUS_OUTCOME: dict[str, Outcome] = {
    "Accepted": Outcome.ACCEPTED,
    "Unlocked": Outcome.ACCEPTED,
    "Rejected": Outcome.REJECTED,
    "Occupied": Outcome.OCCUPIED,
    "Faulted": Outcome.FAULTED,
    "Unavailable": Outcome.UNAVAILABLE,
    "UnlockFailed": Outcome.UNLOCK_FAILED,
    "NotSupported": Outcome.NOT_SUPPORTED,
    "RebootRequired": Outcome.REBOOT_REQUIRED,
}


def to_call(request: sc.StationRequest) -> Any:
    match request:
        case sc.RemoteStart():
            return call.RemoteStartTransaction(
                id_tag=request.id_token, connector_id=request.connector_id
            )
        case sc.RemoteStop():
            return call.RemoteStopTransaction(transaction_id=int(request.transaction_id))
        case sc.Reserve():
            return call.ReserveNow(
                connector_id=request.connector_id,
                expiry_date=ocpi_datetime(request.expiry_date),
                id_tag=request.id_token,
                reservation_id=request.reservation_id,
            )
        case sc.CancelReservation():
            return call.CancelReservation(reservation_id=request.reservation_id)
        case sc.Unlock():
            return call.UnlockConnector(connector_id=request.connector_id)
        case sc.GetConfiguration():
            return call.GetConfiguration(key=list(request.keys) or None)
        case sc.ChangeConfiguration():
            return call.ChangeConfiguration(key=request.key, value=request.value)
        case sc.Reset():
            return call.Reset(type=request.type)
        case sc.ClearCache():
            return call.ClearCache()
    raise TypeError(f"OCPP 1.6 has no translation for {type(request).__name__}")


def to_reply(result: Any, unique_id: str | None = None) -> sc.StationReply:
    status = getattr(result, "status", None)
    outcome = STATUS_OUTCOME.get(str(status), Outcome.REJECTED) if status else Outcome.ACCEPTED
    data: dict[str, Any] = {}
    if isinstance(result, call_result.GetConfiguration):
        # The operator API shows the station's own answer, in the station's own words.
        data = {
            "configurationKey": [
                {"key": k["key"], "readonly": k["readonly"], "value": k.get("value")}
                for k in result.configuration_key or []
            ],
            "unknownKey": list(result.unknown_key or []),
        }
    return sc.StationReply(
        outcome=outcome, status=str(status) if status else None, data=data, unique_id=unique_id
    )
