"""POST a command to the peer's commands endpoint and read its CommandResponse leniently."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from chargegate.domain import commands as dc
from chargegate.domain.emsp_commands import RESPONSE_VALUES, CpoAnswer
from chargegate.service.emsp.ports import SenderIdentity, Target

from ..outgoing import request_headers
from .bodies import command_body


def command_url(endpoint: str, command: str) -> str:
    """`{commands_endpoint_url}{command}`, with or without the endpoint's trailing slash."""
    return f"{endpoint.rstrip('/')}/{command}"


def display_text(value: Any) -> str | None:
    """2.2.1 DisplayText list, a single DisplayText, or a plain string, as one string."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict):
        value = [value]
    if isinstance(value, list):
        texts = [str(v.get("text")) for v in value if isinstance(v, dict) and v.get("text")]
        return " / ".join(texts) or None
    return None


MAX_ANNOUNCED_TIMEOUT = 86_400  # seconds
_KNOWN_RESPONSES = frozenset().union(*RESPONSE_VALUES.values())


def read_answer(status: int, body: Any) -> CpoAnswer:
    """The envelope's status_code and the CommandResponse in `data`: an object, or the bare enum
    string some 2.1.1 peers send (docs/decisions.md#emsp-results)."""
    if not isinstance(body, dict) or "status_code" not in body:
        return CpoAnswer(failure=f"CPO answered HTTP {status} without an OCPI envelope")
    code = body.get("status_code")
    data = body.get("data")
    # The envelope's status_message explains errors; on success it says "Success".
    message = display_text(body.get("status_message")) if code != 1000 else None
    result = timeout = None
    if isinstance(data, str):
        result = data
    elif isinstance(data, dict):
        result = data.get("result") if isinstance(data.get("result"), str) else None
        announced = data.get("timeout")
        # int in the spec; a float is read as one, 0 or less (or NaN) as "none announced", and
        # more than a day as a day: a deadline we can store and compute.
        if isinstance(announced, int | float) and not isinstance(announced, bool):
            timeout = int(min(announced, MAX_ANNOUNCED_TIMEOUT)) if announced > 0 else None
        message = display_text(data.get("message")) or message
    if code == 1000 and result not in _KNOWN_RESPONSES:
        # The CPO took the command but its CommandResponse cannot be read: the command stays
        # open for its result or its expiry (docs/decisions.md#final-means-final).
        return CpoAnswer(
            status_code=1000,
            message=f"success without a CommandResponse we can read: {data!r}"[:255],
        )
    if result is None and not 200 <= status < 300:
        return CpoAnswer(failure=f"CPO answered HTTP {status}, status_code {code}: {message}")
    return CpoAnswer(
        status_code=code if isinstance(code, int) and 0 <= code <= 9999 else None,
        result=result[:24] if result else None,
        timeout=timeout,
        message=message,
    )


class CommandSender:
    """The eMSP role's command channel to a CPO (`CpoCommandChannel`): bodies in the peer's
    version, POSTed with its token and routing headers."""

    def __init__(self, client: httpx.AsyncClient, timeout: float) -> None:
        self._client = client
        self._timeout = timeout

    def body(
        self,
        version: str,
        request: dc.CommandRequest,
        response_url: str,
        *,
        gireve: bool,
        sender: SenderIdentity,
        now: datetime,
    ) -> dict[str, Any]:
        return command_body(version, request, response_url, gireve=gireve, sender=sender, now=now)

    async def send(
        self, target: Target, command: str, body: dict[str, Any], correlation_id: str
    ) -> CpoAnswer:
        url = command_url(target.commands_url, command)
        headers = request_headers(
            version=target.version,
            token=target.token,
            correlation_id=correlation_id,
            from_party=target.from_party,
            to_party=target.to_party,
        )
        if target.plain_token:
            headers["Authorization"] = f"Token {target.token}"
        try:
            response = await self._client.post(
                url, json=body, headers=headers, timeout=self._timeout
            )
        except httpx.HTTPError as exc:
            return CpoAnswer(failure=f"POST {url} failed: {type(exc).__name__}: {exc}".rstrip(": "))
        try:
            parsed: Any = response.json()
        except ValueError:
            parsed = None
        answer = read_answer(response.status_code, parsed)
        if answer.failure and parsed is None:
            return CpoAnswer(
                failure=f"POST {url} answered HTTP {response.status_code}: {response.text[:200]}"
            )
        return answer
