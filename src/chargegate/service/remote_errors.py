"""The error an operator remote request ends with when it cannot be carried out."""

from __future__ import annotations


class RemoteCommandError(Exception):
    """Why a remote command could not be carried out; `kind` picks the HTTP status."""

    def __init__(self, kind: str, message: str, record_id: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.record_id = record_id
