"""`chargegate peer connect|list` and `chargegate emsp start-session|stop-session|reserve|
cancel-reservation|unlock`.

`peer` works on the database directly, like `party`: it runs beside `chargegate serve`, which
must be up at CHARGEGATE_PUBLIC_URL because the CPO calls our versions endpoint back during the
handshake. `emsp` commands go through the running gateway's REST API (an API key in
CHARGEGATE_API_KEY or --api-key): the result arrives at the gateway, not at this process."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx

from chargegate.settings import Settings

from .admin import run

# ---- peer ------------------------------------------------------------------------------------


def _peer_connect(args: argparse.Namespace) -> int:
    from chargegate.service.emsp.peers import peer_name
    from chargegate.service.emsp.ports import PeerApiError

    settings = Settings()
    try:
        peer = run(
            lambda tools: tools.emsp_peers.connect(
                args.versions_url,
                args.token_a,
                profile=args.profile,
                name=args.name,
                version=args.ocpi_version,
            )
        )
    except (PeerApiError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        print(
            f"(the CPO calls us back at {settings.public_url.rstrip('/')}/ocpi/emsp/versions "
            "during the handshake: `chargegate serve` must be running there, on this database)",
            file=sys.stderr,
        )
        return 2
    business = (peer.business_details or {}).get("name")
    print(
        f"connected to {peer_name(peer)} ({peer.role}{', ' + business if business else ''}) "
        f"with OCPI {peer.ocpi_version}{' (' + peer.profile + ' profile)' if peer.profile else ''}"
    )
    print(f"its modules: {', '.join(sorted(peer.endpoints))}")
    if "commands" not in peer.endpoints:
        print("warning: it lists no commands endpoint, so it cannot take commands")
    return 0


def _peer_list(args: argparse.Namespace) -> int:
    from chargegate.service.emsp.peers import peer_name

    print(f"{'PEER':8} {'ROLE':5} {'STATE':13} {'VERSION':8} {'PROFILE':8} VERSIONS URL")
    for p in run(lambda tools: tools.emsp_peers.all()):
        print(
            f"{peer_name(p):8} {p.role or '-':5} {p.state:13} {p.ocpi_version or '-':8} "
            f"{p.profile or '-':8} {p.versions_url}"
        )
    return 0


# ---- emsp commands ---------------------------------------------------------------------------


class _ApiError(Exception):
    pass


def _params(args: argparse.Namespace) -> dict[str, Any]:
    def token() -> dict[str, Any]:
        out: dict[str, Any] = {"uid": args.token_uid, "type": args.token_type}
        if args.contract_id:
            out["contract_id"] = args.contract_id
        return out

    if args.emsp == "start-session":
        body = {"location_id": args.location, "evse_uid": args.evse, "token": token()}
        body["connector_id"] = args.connector
        body["authorization_reference"] = args.authorization_reference
    elif args.emsp == "stop-session":
        body = {"session_id": args.session_id}
    elif args.emsp == "reserve":
        expiry = args.expiry or _in_minutes(args.minutes)
        body = {
            "location_id": args.location,
            "evse_uid": args.evse,
            "token": token(),
            "reservation_id": args.reservation_id,
            "expiry_date": expiry,
        }
    elif args.emsp == "cancel-reservation":
        body = {"reservation_id": args.reservation_id}
    else:
        body = {"location_id": args.location, "evse_uid": args.evse, "connector_id": args.connector}
    if args.to_party:
        body["to_party"] = args.to_party
    return {k: v for k, v in body.items() if v is not None}


def _in_minutes(minutes: float) -> str:
    from chargegate.domain.clock import ocpi_datetime, utcnow

    return ocpi_datetime(utcnow() + timedelta(minutes=minutes))


_COMMAND_OF = {
    "start-session": "START_SESSION",
    "stop-session": "STOP_SESSION",
    "reserve": "RESERVE_NOW",
    "cancel-reservation": "CANCEL_RESERVATION",
    "unlock": "UNLOCK_CONNECTOR",
}


def _say(text: str) -> None:
    print(text, flush=True)


def _describe_response(view: dict[str, Any]) -> str:
    response = view.get("response") or {}
    result = response.get("result")
    text = f"CPO answered: {result or 'no result'}"
    if response.get("status_code") not in (None, 1000):
        text += f" (status_code {response['status_code']})"
    if response.get("message"):
        text += f" — {response['message']}"
    return text


def _describe_outcome(view: dict[str, Any]) -> str:
    state = view["state"]
    if state == "FAILED":
        return f"failed: {view.get('failure')}"
    if state == "EXPIRED":
        return f"expired: no result before the CPO's timeout ({view.get('expires_at')})"
    if state == "RESPONDED":
        return "no result will follow: the CPO did not accept the command"
    result = view.get("result") or {}
    text = f"result: {result.get('result')}"
    if result.get("message"):
        text += f" — {result['message']}"
    return text


def _succeeded(view: dict[str, Any]) -> bool:
    if view["state"] == "RESULT":
        return bool((view.get("result") or {}).get("result") == "ACCEPTED")
    return bool((view.get("response") or {}).get("result") == "ACCEPTED" and not view["final"])


def _sse_events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    kind, data = "message", ""
    for line in lines:
        if line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()
        elif line == "" and data:
            yield kind, json.loads(data)
            kind, data = "message", ""


def _emsp_command(args: argparse.Namespace) -> int:
    key = args.api_key or os.environ.get("CHARGEGATE_API_KEY")
    if not key:
        print("error: an API key is needed: --api-key or CHARGEGATE_API_KEY", file=sys.stderr)
        return 2
    base = (args.url or os.environ.get("CHARGEGATE_URL") or Settings().public_url).rstrip("/")
    headers = {}
    if args.idempotency_key:
        headers["Idempotency-Key"] = args.idempotency_key
    command = _COMMAND_OF[args.emsp]
    try:
        with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60) as client:
            response = client.post(
                f"/emsp/peers/{args.peer}/commands/{command}",
                json=_params(args),
                headers=headers,
            )
            if response.status_code >= 400:
                raise _ApiError(_api_message(response))
            view = response.json()
            _say(f"{command} sent to {view['peer']} as command {view['id']}")
            if view["state"] == "FAILED":
                _say(_describe_outcome(view))
                return 1
            _say(_describe_response(view))
            if view["final"] or not args.wait:
                if view["final"]:
                    _say(_describe_outcome(view))
                return 0 if _succeeded(view) else 1
            timeout = (view.get("response") or {}).get("timeout")
            until = f"the CPO allows {timeout} s" if timeout else f"until {view['expires_at']}"
            _say(f"waiting for the result ({until}) …")
            view = _follow(client, view["id"])
            _say(_describe_outcome(view))
            return 0 if _succeeded(view) else 1
    except _ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except httpx.HTTPError as exc:
        print(f"error: cannot reach chargegate at {base}: {exc}", file=sys.stderr)
        return 2


def _follow(client: httpx.Client, command_id: str) -> dict[str, Any]:
    """The command's stream, until it is final; then the command as it ended."""
    last: dict[str, Any] | None = None
    with client.stream(
        "GET",
        f"/emsp/commands/{command_id}/events",
        timeout=httpx.Timeout(10.0, read=120.0),
    ) as stream:
        if stream.status_code >= 400:
            stream.read()
            raise _ApiError(_api_message(stream))
        for _, payload in _sse_events(stream.iter_lines()):
            last = payload["command"]
            if last.get("final"):
                break
    if last is None or not last.get("final"):
        # The stream ended early (the gateway restarting): ask once more.
        response = client.get(f"/emsp/commands/{command_id}")
        if response.status_code >= 400:
            raise _ApiError(_api_message(response))
        last = response.json()
    return last


def _api_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    message = body.get("message") or body.get("detail") if isinstance(body, dict) else body
    return f"HTTP {response.status_code}: {message}"


# ---- parsers ---------------------------------------------------------------------------------


def add_parsers(sub: Any) -> None:
    peer = sub.add_parser("peer", help="CPOs and hubs we connect to as an eMSP").add_subparsers(
        dest="peer", required=True
    )
    connect = peer.add_parser(
        "connect", help="register with a CPO (credentials handshake, we start it)"
    )
    connect.add_argument("--versions-url", required=True, help="the CPO's OCPI versions URL")
    connect.add_argument("--token-a", required=True, help="the token the CPO gave us")
    connect.add_argument("--profile", choices=["gireve"], help="GIREVE IOP rules for this peer")
    connect.add_argument("--name")
    connect.add_argument(
        "--ocpi-version", choices=["2.2.1", "2.1.1"], help="default: the newest both sides speak"
    )
    connect.set_defaults(func=_peer_connect)
    peer.add_parser("list", help="peers and their state").set_defaults(func=_peer_list)

    emsp = sub.add_parser(
        "emsp", help="send a command to a CPO through the running gateway's API"
    ).add_subparsers(dest="emsp", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = emsp.add_parser(name, help=help_text)
        p.add_argument("--peer", required=True, help="e.g. NL-CGW (see `chargegate peer list`)")
        p.add_argument("--wait", action="store_true", help="wait for the result and print it")
        p.add_argument("--url", help="the gateway (default: CHARGEGATE_URL, else PUBLIC_URL)")
        p.add_argument("--api-key", help="default: CHARGEGATE_API_KEY")
        p.add_argument("--idempotency-key", help="repeat the command safely with the same key")
        p.add_argument("--to-party", help="the CPO behind a hub, e.g. FR-ABC")
        p.set_defaults(func=_emsp_command)
        return p

    def token_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--token-uid", required=True)
        p.add_argument(
            "--token-type", default="APP_USER", choices=["AD_HOC_USER", "APP_USER", "OTHER", "RFID"]
        )
        p.add_argument("--contract-id", help="default: the token uid")

    start = command("start-session", "START_SESSION")
    start.add_argument("--location", required=True)
    start.add_argument("--evse")
    start.add_argument("--connector", help="OCPI 2.2.1 only")
    start.add_argument("--authorization-reference")
    token_args(start)

    stop = command("stop-session", "STOP_SESSION")
    stop.add_argument("--session-id", required=True)

    reserve = command("reserve", "RESERVE_NOW")
    reserve.add_argument("--location", required=True)
    reserve.add_argument("--evse")
    reserve.add_argument("--reservation-id", required=True)
    when = reserve.add_mutually_exclusive_group()
    when.add_argument("--expiry", help="OCPI DateTime, e.g. 2030-01-01T12:00:00Z")
    when.add_argument("--minutes", type=float, default=15.0, help="from now (default 15)")
    token_args(reserve)

    cancel = command("cancel-reservation", "CANCEL_RESERVATION (OCPI 2.2.1)")
    cancel.add_argument("--reservation-id", required=True)

    unlock = command("unlock", "UNLOCK_CONNECTOR (needs an operator key)")
    unlock.add_argument("--location", required=True)
    unlock.add_argument("--evse", required=True)
    unlock.add_argument("--connector", required=True)
