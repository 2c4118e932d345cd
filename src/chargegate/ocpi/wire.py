"""PeerWire for the service layer: our domain rendered in the peer's OCPI version."""

from __future__ import annotations

from typing import Any

from chargegate.domain.commands import CommandResultType
from chargegate.service.ports import SessionView
from chargegate.settings import Settings
from chargegate.store.models import ChargingSession, Party

from .v211 import commands as commands211
from .v211 import objects as objects211
from .v221 import commands as commands221
from .v221 import objects as objects221


class OcpiWire:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def command_result(
        self, version: str, result: CommandResultType, message: str | None
    ) -> dict[str, Any]:
        module = commands211 if version == "2.1.1" else commands221
        return module.result_body(result, message)

    def session(self, version: str, view: SessionView) -> dict[str, Any]:
        module = objects211 if version == "2.1.1" else objects221
        return module.session_object(
            view.session, view.station, view.connectors, self._settings, party=view.party
        )

    def cdr(self, version: str, view: SessionView) -> dict[str, Any]:
        module = objects211 if version == "2.1.1" else objects221
        return module.cdr_object(
            view.session, view.station, view.connectors, self._settings, party=view.party
        )

    def session_push_url(self, party: Party, session: ChargingSession) -> str | None:
        """Sessions receiver: `{endpoint}/{country_code}/{party_id}/{session_id}` (our ids)."""
        endpoint = (party.endpoints or {}).get("sessions")
        if not endpoint:
            return None
        s = self._settings
        return f"{endpoint.rstrip('/')}/{s.country_code}/{s.party_id}/{session.id}"
