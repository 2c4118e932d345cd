"""The in-memory OCPP 2.0.1 device model of a simulated station (GetVariables, SetVariables,
GetBaseReport)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ocpp.v201 import datatypes, enums

from chargegate.sim.state201 import CONNECTOR_ID

Data = enums.DataEnumType
Mutability = enums.MutabilityEnumType
GetStatus = enums.GetVariableStatusEnumType
SetStatus = enums.SetVariableStatusEnumType

# Component and variable names, as OCPP 2.0.1 Part 2 Appendix 3 spells them.
OCPP_COMM_CTRLR = "OCPPCommCtrlr"
AUTH_CTRLR = "AuthCtrlr"
TX_CTRLR = "TxCtrlr"
SAMPLED_DATA_CTRLR = "SampledDataCtrlr"
RESERVATION_CTRLR = "ReservationCtrlr"
DEVICE_DATA_CTRLR = "DeviceDataCtrlr"
CHARGING_STATION = "ChargingStation"
EVSE = "EVSE"
CONNECTOR = "Connector"

HEARTBEAT_INTERVAL = "HeartbeatInterval"
AUTHORIZE_REMOTE_START = "AuthorizeRemoteStart"
STOP_TX_ON_INVALID_ID = "StopTxOnInvalidId"
NON_EVSE_SPECIFIC = "NonEvseSpecific"
ITEMS_PER_MESSAGE = "ItemsPerMessage"
AVAILABILITY_STATE = "AvailabilityState"


@dataclass(frozen=True)
class VariableKey:
    component: str
    variable: str
    component_instance: str | None = None
    variable_instance: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None


@dataclass
class Variable:
    value: str
    data_type: str
    mutability: str = Mutability.read_write
    unit: str | None = None
    values_list: str | None = None

    @property
    def writable(self) -> bool:
        return self.mutability != Mutability.read_only


AVAILABILITY_STATES = ",".join(s.value for s in enums.ConnectorStatusEnumType)


def default_device_model(
    evses: int, heartbeat_interval: int, vendor: str, model: str
) -> dict[VariableKey, Variable]:
    """What a fresh AC station with `evses` single-connector EVSEs reports."""
    ro = Mutability.read_only
    variables: dict[VariableKey, Variable] = {
        VariableKey(CHARGING_STATION, "VendorName"): Variable(vendor, Data.string, ro),
        VariableKey(CHARGING_STATION, "Model"): Variable(model, Data.string, ro),
        VariableKey(CHARGING_STATION, AVAILABILITY_STATE): Variable(
            "Available", Data.option_list, ro, values_list=AVAILABILITY_STATES
        ),
        VariableKey(OCPP_COMM_CTRLR, HEARTBEAT_INTERVAL): Variable(
            str(heartbeat_interval), Data.integer, unit="s"
        ),
        VariableKey(OCPP_COMM_CTRLR, "MessageTimeout", variable_instance="Default"): Variable(
            "30", Data.integer, unit="s"
        ),
        VariableKey(OCPP_COMM_CTRLR, "ResetRetries"): Variable("3", Data.integer),
        VariableKey(AUTH_CTRLR, AUTHORIZE_REMOTE_START): Variable("false", Data.boolean),
        VariableKey(AUTH_CTRLR, "LocalAuthorizeOffline"): Variable("true", Data.boolean),
        VariableKey(AUTH_CTRLR, "LocalPreAuthorize"): Variable("false", Data.boolean),
        VariableKey(TX_CTRLR, "EVConnectionTimeOut"): Variable("60", Data.integer, unit="s"),
        VariableKey(TX_CTRLR, STOP_TX_ON_INVALID_ID): Variable("true", Data.boolean),
        VariableKey(TX_CTRLR, "TxStartPoint"): Variable(
            "PowerPathClosed",
            Data.member_list,
            values_list="ParkingBayOccupancy,EVConnected,Authorized,PowerPathClosed,EnergyTransfer",
        ),
        VariableKey(SAMPLED_DATA_CTRLR, "TxUpdatedInterval"): Variable(
            "60", Data.integer, unit="s"
        ),
        VariableKey(SAMPLED_DATA_CTRLR, "TxUpdatedMeasurands"): Variable(
            enums.MeasurandEnumType.energy_active_import_register, Data.member_list
        ),
        VariableKey(RESERVATION_CTRLR, "Enabled"): Variable("true", Data.boolean, ro),
        VariableKey(RESERVATION_CTRLR, NON_EVSE_SPECIFIC): Variable("true", Data.boolean, ro),
        VariableKey(DEVICE_DATA_CTRLR, ITEMS_PER_MESSAGE, variable_instance="GetReport"): Variable(
            "10", Data.integer, ro
        ),
        VariableKey(
            DEVICE_DATA_CTRLR, ITEMS_PER_MESSAGE, variable_instance="GetVariables"
        ): Variable("20", Data.integer, ro),
    }
    for evse_id in range(1, evses + 1):
        variables[VariableKey(EVSE, AVAILABILITY_STATE, evse_id=evse_id)] = Variable(
            "Available", Data.option_list, ro, values_list=AVAILABILITY_STATES
        )
        variables[
            VariableKey(CONNECTOR, "ConnectorType", evse_id=evse_id, connector_id=CONNECTOR_ID)
        ] = Variable(enums.ConnectorEnumType.c_type2, Data.option_list, ro)
    return variables


def _key(component: dict[str, Any], variable: dict[str, Any]) -> VariableKey:
    """The key of a component/variable pair as the ocpp library hands it over (snake_case)."""
    evse = component.get("evse") or {}
    return VariableKey(
        component=component["name"],
        variable=variable["name"],
        component_instance=component.get("instance"),
        variable_instance=variable.get("instance"),
        evse_id=evse.get("id"),
        connector_id=evse.get("connector_id"),
    )


def _valid(variable: Variable, value: str) -> bool:
    if variable.data_type == Data.integer:
        try:
            int(value)
        except ValueError:
            return False
        return True
    if variable.data_type == Data.boolean:
        return value.lower() in ("true", "false")
    return True


def _is_actual(attribute_type: str | None) -> bool:
    # The simulator keeps only the Actual value; Target, MinSet and MaxSet do not exist.
    return attribute_type in (None, enums.AttributeEnumType.actual)


class DeviceModel:
    def __init__(self, variables: dict[VariableKey, Variable]) -> None:
        self._variables = variables

    def __iter__(self) -> Iterator[tuple[VariableKey, Variable]]:
        return iter(self._variables.items())

    def __len__(self) -> int:
        return len(self._variables)

    def get(self, component: str, variable: str, **where: Any) -> str | None:
        found = self._variables.get(VariableKey(component, variable, **where))
        return found.value if found is not None else None

    def get_bool(self, component: str, variable: str, **where: Any) -> bool:
        return (self.get(component, variable, **where) or "").lower() == "true"

    def get_int(self, component: str, variable: str, fallback: int, **where: Any) -> int:
        try:
            return int(self.get(component, variable, **where) or "")
        except ValueError:
            return fallback

    def set(self, component: str, variable: str, value: str, **where: Any) -> None:
        """Change a value whatever its mutability, as the station itself may."""
        self._variables[VariableKey(component, variable, **where)].value = value

    def _verdict(self, key: VariableKey) -> str | None:
        """UnknownComponent / UnknownVariable, or None when the variable exists."""
        if key in self._variables:
            return None
        component_known = any(
            (k.component, k.component_instance, k.evse_id, k.connector_id)
            == (key.component, key.component_instance, key.evse_id, key.connector_id)
            for k in self._variables
        )
        return GetStatus.unknown_variable if component_known else GetStatus.unknown_component

    def get_variables(
        self, data: list[dict[str, Any]], forced: str | None = None
    ) -> list[datatypes.GetVariableResultType]:
        """GetVariables.conf entries for the request's getVariableData (snake_case dicts);
        `forced` replaces the status of every entry that exists."""
        results = []
        for entry in data:
            key = _key(entry["component"], entry["variable"])
            attribute_type = entry.get("attribute_type")
            status = self._verdict(key)
            if status is None and not _is_actual(attribute_type):
                status = GetStatus.not_supported_attribute_type
            if status is None:
                status = forced or GetStatus.accepted
            value = self._variables[key].value if status == GetStatus.accepted else None
            results.append(
                datatypes.GetVariableResultType(
                    attribute_status=GetStatus(status),
                    component=entry["component"],
                    variable=entry["variable"],
                    attribute_type=attribute_type,
                    attribute_value=value,
                )
            )
        return results

    def set_variables(
        self, data: list[dict[str, Any]], forced: str | None = None
    ) -> list[datatypes.SetVariableResultType]:
        """SetVariables.conf entries, storing the values a station would accept.

        `forced` Rejected refuses every known variable; RebootRequired stores the value as
        Accepted would, since the station takes it over at its next boot."""
        results = []
        for entry in data:
            key = _key(entry["component"], entry["variable"])
            attribute_type = entry.get("attribute_type")
            status = self._verdict(key)
            if status is None and not _is_actual(attribute_type):
                status = SetStatus.not_supported_attribute_type
            if status is None:
                variable = self._variables[key]
                if not variable.writable or not _valid(variable, entry["attribute_value"]):
                    status = SetStatus.rejected
                else:
                    status = forced or SetStatus.accepted
                if status in (SetStatus.accepted, SetStatus.reboot_required):
                    variable.value = entry["attribute_value"]
            results.append(
                datatypes.SetVariableResultType(
                    attribute_status=SetStatus(status),
                    component=entry["component"],
                    variable=entry["variable"],
                    attribute_type=attribute_type,
                )
            )
        return results

    def report(self, base: str) -> list[datatypes.ReportDataType]:
        """NotifyReport reportData for a GetBaseReport of `base`."""
        if base == enums.ReportBaseEnumType.configuration_inventory:
            chosen = [(k, v) for k, v in self if v.writable]
        elif base == enums.ReportBaseEnumType.summary_inventory:
            chosen = [(k, v) for k, v in self if k.variable == AVAILABILITY_STATE]
        else:
            chosen = list(self)
        return [_report_entry(key, variable) for key, variable in chosen]


def _report_entry(key: VariableKey, variable: Variable) -> datatypes.ReportDataType:
    evse = (
        datatypes.EVSEType(id=key.evse_id, connector_id=key.connector_id)
        if key.evse_id is not None
        else None
    )
    return datatypes.ReportDataType(
        component=datatypes.ComponentType(
            name=key.component, instance=key.component_instance, evse=evse
        ),
        variable=datatypes.VariableType(name=key.variable, instance=key.variable_instance),
        variable_attribute=[
            datatypes.VariableAttributeType(
                type=enums.AttributeEnumType.actual,
                value=variable.value,
                mutability=variable.mutability,
            )
        ],
        variable_characteristics=datatypes.VariableCharacteristicsType(
            data_type=variable.data_type,
            supports_monitoring=False,
            unit=variable.unit,
            values_list=variable.values_list,
        ),
    )
