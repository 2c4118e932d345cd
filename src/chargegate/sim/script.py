"""What a simulated station answers to each CSMS-initiated OCPP 1.6 action."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from ocpp.v16 import enums


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


def parse_behaviour(name: str | Behaviour) -> Behaviour:
    try:
        return Behaviour(name)
    except ValueError:
        known = ", ".join(b.value for b in Behaviour)
        raise ValueError(f"unknown behaviour {name!r}; expected one of: {known}") from None


def allowed_behaviours(action: str) -> frozenset[Behaviour]:
    """Behaviours that make sense for `action`; ValueError if the station never receives it."""
    if action not in CSMS_ACTIONS:
        known = ", ".join(sorted(CSMS_ACTIONS))
        raise ValueError(
            f"unknown action {action!r}: not an OCPP 1.6 action a CSMS sends to a station "
            f"(expected one of: {known})"
        )
    if action == enums.Action.get_configuration:
        return PROTOCOL_BEHAVIOURS | {Behaviour.ACCEPT}
    return PROTOCOL_BEHAVIOURS | frozenset(STATUS_ANSWERS.get(action, {}))


def validate(action: str, behaviour: str | Behaviour) -> Behaviour:
    parsed = parse_behaviour(behaviour)
    allowed = allowed_behaviours(action)
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

    One Script may be shared by many stations (a fleet): a change applies to all of them.
    """

    def __init__(
        self,
        default: str | Behaviour = Behaviour.ACCEPT,
        answers: Mapping[str, str | Behaviour] | None = None,
    ) -> None:
        self._default = self._validate_default(default)
        self._entries: dict[str, _Entry] = {}
        for action, behaviour in (answers or {}).items():
            self.set(action, behaviour)

    @classmethod
    def from_cli(cls, default: str, answers: Iterable[str]) -> Script:
        """Build from `--default-answer` and repeated `--answer ACTION=BEHAVIOUR` values."""
        script = cls(default)
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
    def default(self) -> Behaviour:
        return self._default

    @default.setter
    def default(self, behaviour: str | Behaviour) -> None:
        self._default = self._validate_default(behaviour)

    def set(self, action: str, behaviour: str | Behaviour, times: int | None = None) -> None:
        """Answer `action` with `behaviour`; with `times`, only for the next `times` CALLs."""
        parsed = validate(action, behaviour)
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
        if action not in CSMS_ACTIONS or behaviour in PROTOCOL_BEHAVIOURS:
            return behaviour
        if behaviour in allowed_behaviours(action):
            return behaviour
        return _DEFAULT_FALLBACK.get((action, behaviour), Behaviour.ACCEPT)

    def as_dict(self) -> dict[str, str]:
        return {action: entry.behaviour.value for action, entry in self._entries.items()}

    def __repr__(self) -> str:
        return f"Script(default={self._default.value!r}, answers={self.as_dict()!r})"


def status_for(action: str, behaviour: Behaviour) -> str:
    """The status field of the CALLRESULT for `action` answered with `behaviour`."""
    try:
        return STATUS_ANSWERS[action][behaviour]
    except KeyError:
        raise ValueError(
            f"{action} has no status answer for behaviour {behaviour.value!r}"
        ) from None
