"""The in-memory OCPP 1.6 configuration of a simulated station (GetConfiguration and friends)."""

from __future__ import annotations

from dataclasses import dataclass

from ocpp.v16 import datatypes, enums

Key = enums.ConfigurationKey


@dataclass
class ConfigEntry:
    value: str
    readonly: bool


def default_configuration(connectors: int, heartbeat_interval: int) -> dict[str, ConfigEntry]:
    """Core-profile keys a typical 1.6J station reports, with the values a fresh one would have."""
    return {
        Key.heartbeat_interval: ConfigEntry(str(heartbeat_interval), False),
        Key.connection_time_out: ConfigEntry("60", False),
        Key.number_of_connectors: ConfigEntry(str(connectors), True),
        Key.meter_value_sample_interval: ConfigEntry("60", False),
        Key.meter_values_sampled_data: ConfigEntry("Energy.Active.Import.Register", False),
        Key.authorize_remote_tx_requests: ConfigEntry("false", False),
        Key.local_authorize_offline: ConfigEntry("true", False),
        Key.local_pre_authorize: ConfigEntry("false", False),
        Key.stop_transaction_on_ev_side_disconnect: ConfigEntry("true", False),
        Key.stop_transaction_on_invalid_id: ConfigEntry("true", False),
        Key.unlock_connector_on_ev_side_disconnect: ConfigEntry("true", False),
        Key.reset_retries: ConfigEntry("3", False),
        Key.get_configuration_max_keys: ConfigEntry("50", True),
        Key.supported_feature_profiles: ConfigEntry(
            "Core,FirmwareManagement,LocalAuthListManagement,Reservation,RemoteTrigger", True
        ),
        Key.reserve_connector_zero_supported: ConfigEntry("false", True),
    }


class Configuration:
    def __init__(self, entries: dict[str, ConfigEntry]) -> None:
        self._entries = entries

    def get(self, key: str) -> str | None:
        entry = self._entries.get(key)
        return entry.value if entry is not None else None

    def get_bool(self, key: str) -> bool:
        return (self.get(key) or "").lower() == "true"

    def get_int(self, key: str, fallback: int) -> int:
        try:
            return int(self.get(key) or "")
        except ValueError:
            return fallback

    def lookup(self, keys: list[str] | None) -> tuple[list[datatypes.KeyValue], list[str]]:
        """GetConfiguration.conf contents: known keys, then the requested keys that are unknown."""
        wanted = list(self._entries) if not keys else keys
        known = [
            datatypes.KeyValue(
                key=k, readonly=self._entries[k].readonly, value=self._entries[k].value
            )
            for k in wanted
            if k in self._entries
        ]
        unknown = [k for k in wanted if k not in self._entries]
        return known, unknown

    def check_change(self, key: str) -> str:
        """The status a real station gives to ChangeConfiguration of `key` when it is willing."""
        entry = self._entries.get(key)
        if entry is None:
            return enums.ConfigurationStatus.not_supported
        if entry.readonly:
            return enums.ConfigurationStatus.rejected
        return enums.ConfigurationStatus.accepted

    def set(self, key: str, value: str) -> None:
        entry = self._entries.get(key)
        if entry is None:
            self._entries[key] = ConfigEntry(value, False)
        else:
            entry.value = value
