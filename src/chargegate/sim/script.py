"""What a simulated station answers to each CSMS-initiated OCPP 1.6 or 2.0.1 action."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, get_args

from ocpp.v16 import enums
from ocpp.v201 import enums as enums201

OcppVersion = Literal["1.6", "2.0.1"]
OCPP_VERSIONS: tuple[OcppVersion, ...] = get_args(OcppVersion)


class Behaviour(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    OCCUPIED = "occupied"
    FAULTED = "faulted"
    UNAVAILABLE = "unavailable"
    UNLOCK_FAILED = "unlock_failed"
    NOT_SUPPORTED = "not_supported"
    REBOOT_REQUIRED = "reboot_required"
    CALL_ERROR = "call_error"
    NOT_IMPLEMENTED = "not_implemented"
    SILENT = "silent"
    DISCONNECT = "disconnect"
    # OCPP 2.0.1 only.
    ONGOING_TRANSACTION = "ongoing_transaction"
    UNKNOWN_CONNECTOR = "unknown_connector"
    SCHEDULED = "scheduled"


# Handled at the protocol level, before any handler runs, so they apply to every action the CSMS
# can send, including the ones the simulator has no handler for.
PROTOCOL_BEHAVIOURS: frozenset[Behaviour] = frozenset(
    {Behaviour.CALL_ERROR, Behaviour.NOT_IMPLEMENTED, Behaviour.SILENT, Behaviour.DISCONNECT}
)

# The status each behaviour puts in the CALLRESULT, per action the simulator handles.
STATUS_ANSWERS: dict[str, dict[Behaviour, str]] = {
    enums.Action.remote_start_transaction: {
        Behaviour.ACCEPT: enums.RemoteStartStopStatus.accepted,
        Behaviour.REJECT: enums.RemoteStartStopStatus.rejected,
    },
    enums.Action.remote_stop_transaction: {
        Behaviour.ACCEPT: enums.RemoteStartStopStatus.accepted,
        Behaviour.REJECT: enums.RemoteStartStopStatus.rejected,
    },
    enums.Action.reserve_now: {
        Behaviour.ACCEPT: enums.ReservationStatus.accepted,
        Behaviour.REJECT: enums.ReservationStatus.rejected,
        Behaviour.OCCUPIED: enums.ReservationStatus.occupied,
        Behaviour.FAULTED: enums.ReservationStatus.faulted,
        Behaviour.UNAVAILABLE: enums.ReservationStatus.unavailable,
    },
    enums.Action.cancel_reservation: {
        Behaviour.ACCEPT: enums.CancelReservationStatus.accepted,
        Behaviour.REJECT: enums.CancelReservationStatus.rejected,
    },
    enums.Action.unlock_connector: {
        Behaviour.ACCEPT: enums.UnlockStatus.unlocked,
        Behaviour.UNLOCK_FAILED: enums.UnlockStatus.unlock_failed,
        Behaviour.NOT_SUPPORTED: enums.UnlockStatus.not_supported,
    },
    enums.Action.reset: {
        Behaviour.ACCEPT: enums.ResetStatus.accepted,
        Behaviour.REJECT: enums.ResetStatus.rejected,
    },
    enums.Action.change_configuration: {
        Behaviour.ACCEPT: enums.ConfigurationStatus.accepted,
        Behaviour.REJECT: enums.ConfigurationStatus.rejected,
        Behaviour.REBOOT_REQUIRED: enums.ConfigurationStatus.reboot_required,
        Behaviour.NOT_SUPPORTED: enums.ConfigurationStatus.not_supported,
    },
    enums.Action.clear_cache: {
        Behaviour.ACCEPT: enums.ClearCacheStatus.accepted,
        Behaviour.REJECT: enums.ClearCacheStatus.rejected,
    },
    enums.Action.trigger_message: {
        Behaviour.ACCEPT: enums.TriggerMessageStatus.accepted,
        Behaviour.REJECT: enums.TriggerMessageStatus.rejected,
    },
}

# GetConfiguration.conf carries no status: the only answer besides the protocol behaviours is
# the configuration itself.
HANDLED_ACTIONS: frozenset[str] = frozenset(STATUS_ANSWERS) | {enums.Action.get_configuration}

# Every action a Central System may send to a Charge Point in OCPP 1.6 (incl. the security
# whitepaper). Scripting an action outside this set is always a mistake: the station never
# receives it.
CSMS_ACTIONS: frozenset[str] = HANDLED_ACTIONS | {
    enums.Action.certificate_signed,
    enums.Action.change_availability,
    enums.Action.clear_charging_profile,
    enums.Action.data_transfer,
    enums.Action.delete_certificate,
    enums.Action.extended_trigger_message,
    enums.Action.get_composite_schedule,
    enums.Action.get_diagnostics,
    enums.Action.get_installed_certificate_ids,
    enums.Action.get_local_list_version,
    enums.Action.get_log,
    enums.Action.install_certificate,
    enums.Action.send_local_list,
    enums.Action.set_charging_profile,
    enums.Action.signed_update_firmware,
    enums.Action.update_firmware,
}

DEFAULT_BEHAVIOURS: frozenset[Behaviour] = PROTOCOL_BEHAVIOURS | {
    Behaviour.ACCEPT,
    Behaviour.REJECT,
}

# A default of `reject` should still mean "say no" where the action has no Rejected status.
_DEFAULT_FALLBACK: dict[tuple[str, Behaviour], Behaviour] = {
    (enums.Action.unlock_connector, Behaviour.REJECT): Behaviour.UNLOCK_FAILED,
}


# -- OCPP 2.0.1 ---------------------------------------------------------------------------------

Action201 = enums201.Action

STATUS_ANSWERS_201: dict[str, dict[Behaviour, str]] = {
    Action201.request_start_transaction: {
        Behaviour.ACCEPT: enums201.RequestStartStopStatusEnumType.accepted,
        Behaviour.REJECT: enums201.RequestStartStopStatusEnumType.rejected,
    },
    Action201.request_stop_transaction: {
        Behaviour.ACCEPT: enums201.RequestStartStopStatusEnumType.accepted,
        Behaviour.REJECT: enums201.RequestStartStopStatusEnumType.rejected,
    },
    Action201.reserve_now: {
        Behaviour.ACCEPT: enums201.ReserveNowStatusEnumType.accepted,
        Behaviour.REJECT: enums201.ReserveNowStatusEnumType.rejected,
        Behaviour.OCCUPIED: enums201.ReserveNowStatusEnumType.occupied,
        Behaviour.FAULTED: enums201.ReserveNowStatusEnumType.faulted,
        Behaviour.UNAVAILABLE: enums201.ReserveNowStatusEnumType.unavailable,
    },
    Action201.cancel_reservation: {
        Behaviour.ACCEPT: enums201.CancelReservationStatusEnumType.accepted,
        Behaviour.REJECT: enums201.CancelReservationStatusEnumType.rejected,
    },
    Action201.unlock_connector: {
        Behaviour.ACCEPT: enums201.UnlockStatusEnumType.unlocked,
        Behaviour.UNLOCK_FAILED: enums201.UnlockStatusEnumType.unlock_failed,
        Behaviour.ONGOING_TRANSACTION: enums201.UnlockStatusEnumType.ongoing_authorized_transaction,
        Behaviour.UNKNOWN_CONNECTOR: enums201.UnlockStatusEnumType.unknown_connector,
    },
    Action201.reset: {
        Behaviour.ACCEPT: enums201.ResetStatusEnumType.accepted,
        Behaviour.REJECT: enums201.ResetStatusEnumType.rejected,
        Behaviour.SCHEDULED: enums201.ResetStatusEnumType.scheduled,
    },
    # GetVariables and SetVariables carry a status per requested variable: the scripted one
    # replaces Accepted for every variable the device model has (unknown ones stay unknown).
    Action201.get_variables: {
        Behaviour.ACCEPT: enums201.GetVariableStatusEnumType.accepted,
        Behaviour.REJECT: enums201.GetVariableStatusEnumType.rejected,
    },
    Action201.set_variables: {
        Behaviour.ACCEPT: enums201.SetVariableStatusEnumType.accepted,
        Behaviour.REJECT: enums201.SetVariableStatusEnumType.rejected,
        Behaviour.REBOOT_REQUIRED: enums201.SetVariableStatusEnumType.reboot_required,
    },
    Action201.get_base_report: {
        Behaviour.ACCEPT: enums201.GenericDeviceModelStatusEnumType.accepted,
        Behaviour.REJECT: enums201.GenericDeviceModelStatusEnumType.rejected,
        Behaviour.NOT_SUPPORTED: enums201.GenericDeviceModelStatusEnumType.not_supported,
    },
    Action201.clear_cache: {
        Behaviour.ACCEPT: enums201.ClearCacheStatusEnumType.accepted,
        Behaviour.REJECT: enums201.ClearCacheStatusEnumType.rejected,
    },
    Action201.trigger_message: {
        Behaviour.ACCEPT: enums201.TriggerMessageStatusEnumType.accepted,
        Behaviour.REJECT: enums201.TriggerMessageStatusEnumType.rejected,
        # The station's way to say it cannot send the requested message.
        Behaviour.NOT_SUPPORTED: enums201.TriggerMessageStatusEnumType.not_implemented,
    },
}

# Every action a CSMS may send to a Charging Station in OCPP 2.0.1.
CSMS_ACTIONS_201: frozenset[str] = frozenset(STATUS_ANSWERS_201) | {
    Action201.certificate_signed,
    Action201.change_availability,
    Action201.clear_charging_profile,
    Action201.clear_display_message,
    Action201.clear_variable_monitoring,
    Action201.cost_updated,
    Action201.customer_information,
    Action201.data_transfer,
    Action201.delete_certificate,
    Action201.get_charging_profiles,
    Action201.get_composite_schedule,
    Action201.get_display_messages,
    Action201.get_installed_certificate_ids,
    Action201.get_local_list_version,
    Action201.get_log,
    Action201.get_monitoring_report,
    Action201.get_report,
    Action201.get_transaction_status,
    Action201.install_certificate,
    Action201.publish_firmware,
    Action201.send_local_list,
    Action201.set_charging_profile,
    Action201.set_display_message,
    Action201.set_monitoring_base,
    Action201.set_monitoring_level,
    Action201.set_network_profile,
    Action201.set_variable_monitoring,
    Action201.unpublish_firmware,
    Action201.update_firmware,
}

_DEFAULT_FALLBACK_201: dict[tuple[str, Behaviour], Behaviour] = {
    (Action201.unlock_connector, Behaviour.REJECT): Behaviour.UNLOCK_FAILED,
}


@dataclass(frozen=True)
class _Rules:
    """What the script may say per action, for one OCPP version."""

    version: OcppVersion
    status_answers: Mapping[str, Mapping[Behaviour, str]]
    csms_actions: frozenset[str]
    # Handled, but answered without a status: only `accept` and the protocol behaviours apply.
    statusless: frozenset[str]
    fallback: Mapping[tuple[str, Behaviour], Behaviour]


_RULES: dict[str, _Rules] = {
    "1.6": _Rules(
        "1.6",
        STATUS_ANSWERS,
        CSMS_ACTIONS,
        frozenset({enums.Action.get_configuration}),
        _DEFAULT_FALLBACK,
    ),
    "2.0.1": _Rules(
        "2.0.1", STATUS_ANSWERS_201, CSMS_ACTIONS_201, frozenset(), _DEFAULT_FALLBACK_201
    ),
}


def _rules(version: str) -> _Rules:
    try:
        return _RULES[version]
    except KeyError:
        raise ValueError(
            f"unknown OCPP version {version!r}; expected one of: {', '.join(OCPP_VERSIONS)}"
        ) from None


def csms_actions(version: str) -> frozenset[str]:
    """Every action a CSMS may send to a station in OCPP `version`."""
    return _rules(version).csms_actions


def parse_behaviour(name: str | Behaviour) -> Behaviour:
    try:
        return Behaviour(name)
    except ValueError:
        known = ", ".join(b.value for b in Behaviour)
        raise ValueError(f"unknown behaviour {name!r}; expected one of: {known}") from None


def allowed_behaviours(action: str, version: str = "1.6") -> frozenset[Behaviour]:
    """Behaviours that make sense for `action`; ValueError if the station never receives it."""
    rules = _rules(version)
    if action not in rules.csms_actions:
        known = ", ".join(sorted(rules.csms_actions))
        raise ValueError(
            f"unknown action {action!r}: not an OCPP {rules.version} action a CSMS sends to a "
            f"station (expected one of: {known})"
        )
    if action in rules.statusless:
        return PROTOCOL_BEHAVIOURS | {Behaviour.ACCEPT}
    return PROTOCOL_BEHAVIOURS | frozenset(rules.status_answers.get(action, {}))


def validate(action: str, behaviour: str | Behaviour, version: str = "1.6") -> Behaviour:
    parsed = parse_behaviour(behaviour)
    allowed = allowed_behaviours(action, version)
    if parsed not in allowed:
        options = ", ".join(sorted(b.value for b in allowed))
        raise ValueError(
            f"behaviour {parsed.value!r} makes no sense for {action}; choose one of: {options}"
        )
    return parsed


@dataclass
class _Entry:
    behaviour: Behaviour
    # None: until changed; n: for the next n CALLs of that action, then the default applies.
    remaining: int | None


class Script:
    """Action name → behaviour, with a default, changeable while stations run.

    One Script may be shared by many stations (a fleet): a change applies to all of them, so
    all of them must speak its OCPP `version`.
    """

    def __init__(
        self,
        default: str | Behaviour = Behaviour.ACCEPT,
        answers: Mapping[str, str | Behaviour] | None = None,
        version: OcppVersion = "1.6",
    ) -> None:
        self._rules = _rules(version)
        self._default = self._validate_default(default)
        self._entries: dict[str, _Entry] = {}
        for action, behaviour in (answers or {}).items():
            self.set(action, behaviour)

    @classmethod
    def from_cli(cls, default: str, answers: Iterable[str], version: OcppVersion = "1.6") -> Script:
        """Build from `--default-answer` and repeated `--answer ACTION=BEHAVIOUR` values."""
        script = cls(default, version=version)
        for item in answers:
            action, sep, behaviour = item.partition("=")
            if not sep or not action.strip() or not behaviour.strip():
                raise ValueError(f"expected ACTION=BEHAVIOUR, got {item!r}")
            script.set(action.strip(), behaviour.strip())
        return script

    @staticmethod
    def _validate_default(default: str | Behaviour) -> Behaviour:
        parsed = parse_behaviour(default)
        if parsed not in DEFAULT_BEHAVIOURS:
            options = ", ".join(sorted(b.value for b in DEFAULT_BEHAVIOURS))
            raise ValueError(
                f"behaviour {parsed.value!r} only makes sense for some actions and cannot be "
                f"the default; choose one of: {options}"
            )
        return parsed

    @property
    def version(self) -> OcppVersion:
        return self._rules.version

    @property
    def default(self) -> Behaviour:
        return self._default

    @default.setter
    def default(self, behaviour: str | Behaviour) -> None:
        self._default = self._validate_default(behaviour)

    def set(self, action: str, behaviour: str | Behaviour, times: int | None = None) -> None:
        """Answer `action` with `behaviour`; with `times`, only for the next `times` CALLs."""
        parsed = validate(action, behaviour, self._rules.version)
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1, got {times}")
        self._entries[action] = _Entry(parsed, times)

    def unset(self, action: str) -> None:
        self._entries.pop(action, None)

    def clear(self) -> None:
        self._entries.clear()

    def behaviour(self, action: str) -> Behaviour:
        """The behaviour the next CALL of `action` will get, without consuming it."""
        entry = self._entries.get(action)
        if entry is not None:
            return entry.behaviour
        return self._default_for(action)

    def take(self, action: str) -> Behaviour:
        """The behaviour for a CALL of `action` that just arrived; counts down `times`."""
        entry = self._entries.get(action)
        if entry is None:
            return self._default_for(action)
        if entry.remaining is not None:
            entry.remaining -= 1
            if entry.remaining == 0:
                del self._entries[action]
        return entry.behaviour

    def _default_for(self, action: str) -> Behaviour:
        behaviour = self._default
        if action not in self._rules.csms_actions or behaviour in PROTOCOL_BEHAVIOURS:
            return behaviour
        if behaviour in allowed_behaviours(action, self._rules.version):
            return behaviour
        return self._rules.fallback.get((action, behaviour), Behaviour.ACCEPT)

    def as_dict(self) -> dict[str, str]:
        return {action: entry.behaviour.value for action, entry in self._entries.items()}

    def __repr__(self) -> str:
        return (
            f"Script(default={self._default.value!r}, answers={self.as_dict()!r}, "
            f"version={self.version!r})"
        )


def status_for(action: str, behaviour: Behaviour, version: str = "1.6") -> str:
    """The status field of the CALLRESULT for `action` answered with `behaviour`."""
    try:
        return _rules(version).status_answers[action][behaviour]
    except KeyError:
        raise ValueError(
            f"{action} has no status answer for behaviour {behaviour.value!r}"
        ) from None
