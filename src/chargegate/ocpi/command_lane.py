"""POST /ocpi/cpo/{version}/commands/{command} answered in front of FastAPI.

The command POST is the one request every command makes, and FastAPI's routing, wrappers and
middleware cost more CPU than its own work (docs/performance.md#command-lane). The lane matches
that one path with a regular expression and calls the function the FastAPI route calls
(ocpi/commands.py `command_answer`), so the route stays in the OpenAPI document and both answer
alike, including the OCPI 500 envelope for an unexpected error.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from .commands import command_answer, router
from .envelope import OcpiError, error_response, internal_error_response
from .middleware import OcpiRequestIds

log = logging.getLogger(__name__)

_PATH = re.compile(re.escape(router.prefix) + r"/([^/]+)/commands/([^/]+)")


class CommandLane:
    """`app`: where everything else goes; `owner`: the application whose state requests read
    (`request.app`), which FastAPI would otherwise put in the scope."""

    def __init__(self, app: ASGIApp, owner: Any) -> None:
        self.app = app
        self.owner = owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = (
            _PATH.fullmatch(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        if match is None:
            await self.app(scope, receive, send)
            return
        scope["app"] = self.owner
        version, command = match.groups()
        try:
            response = await command_answer(Request(scope, receive), version, command)
        except OcpiError as exc:
            response = error_response(exc)
        except Exception:
            log.exception("unhandled error on POST %s", scope["path"])
            response = internal_error_response()
        await response(scope, receive, send)


class LanedApp(FastAPI):
    """FastAPI with the OCPI request ids and the command lane in front of its own middleware
    stack; `command_lane=False` leaves the command POST to its FastAPI route (tests compare the
    two)."""

    def __init__(self, *, command_lane: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        routed = super().__call__
        self.front: ASGIApp = OcpiRequestIds(CommandLane(routed, self) if command_lane else routed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await super().__call__(scope, receive, send)
        else:
            await self.front(scope, receive, send)
