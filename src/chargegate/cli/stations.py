"""`chargegate station add | list | show | disable | enable | remove | set-password`: the
registry of stations the gateway admits (docs/security.md#station-admission)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from chargegate.settings import Settings

from .admin import run

if TYPE_CHECKING:
    from chargegate.bootstrap import AdminTools
    from chargegate.service.station_admission import AdmissionRow

_WEAK = (
    "admitted by its id alone: anyone who knows the id can connect as this station while it is"
    " offline (docs/security.md#station-admission)"
)


def add_parsers(station: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add = station.add_parser(
        "add", help="register a station; prints its generated Basic auth password once"
    )
    add.add_argument("station_id")
    secret = add.add_mutually_exclusive_group()
    secret.add_argument("--password", help="16-40 characters (default: a generated one)")
    secret.add_argument("--no-password", action="store_true", help="admit by id alone (weak)")
    add.set_defaults(func=station_add)

    station.add_parser("list", help="stations and their admission").set_defaults(func=station_list)
    for name, func, text in (
        ("show", station_show, "one station's admission"),
        ("disable", station_disable, "refuse the station (and drop its connection)"),
        ("enable", station_enable, "admit a disabled station again"),
        ("remove", station_remove, "unregister the station (its history stays)"),
    ):
        sub = station.add_parser(name, help=text)
        sub.add_argument("station_id")
        sub.set_defaults(func=func)

    password = station.add_parser(
        "set-password", help="give a station a new Basic auth password (prints a generated one)"
    )
    password.add_argument("station_id")
    choice = password.add_mutually_exclusive_group()
    choice.add_argument("--password", help="16-40 characters (default: a generated one)")
    choice.add_argument("--no-password", action="store_true", help="admit by id alone (weak)")
    password.add_argument(
        "--via-station",
        action="store_true",
        help=(
            "send it to the connected station first (1.6 AuthorizationKey, 2.0.1"
            " BasicAuthPassword) through the running gateway's operator API; stored only if"
            " the station accepts"
        ),
    )
    password.add_argument(
        "--gateway", help="the running gateway's URL (default: CHARGEGATE_PUBLIC_URL)"
    )
    password.add_argument(
        "--api-key", help="operator API key for --via-station (default: CHARGEGATE_API_KEY)"
    )
    password.set_defaults(func=station_set_password)


def _fail(exc: Exception) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return 2


def _admission_errors() -> tuple[type[Exception], ...]:
    from chargegate.service.station_admission import (
        PasswordNotTaken,
        StationAlreadyRegistered,
        UnknownStation,
    )

    return (ValueError, UnknownStation, StationAlreadyRegistered, PasswordNotTaken)


def _state(row: AdmissionRow) -> str:
    if not row.registered:
        return "unregistered"
    return "disabled" if row.disabled else "registered"


def _print_password(station_id: str, password: str) -> None:
    print(
        f"configure station {station_id} with this HTTP Basic password (user-id {station_id});"
        " it is not shown again:"
    )
    print(password)


def _password_step(
    step: Callable[[AdminTools], Awaitable[tuple[Any, str | None]]], *, weak: str, given: str
) -> int:
    """Run `step` (register, or set a password), then say what the station's password is now:
    a generated one printed once, none (`weak`), or the one given (`given`); each message
    follows the station id as it is."""
    try:
        row, generated = run(step)
    except _admission_errors() as exc:
        return _fail(exc)
    if generated is not None:
        _print_password(row.station_id, generated)
    elif not row.has_password:
        print(f"station {row.station_id}{weak}")
    else:
        print(f"station {row.station_id}{given}")
    return 0


def station_add(args: argparse.Namespace) -> int:
    return _password_step(
        lambda tools: tools.admission.add(
            args.station_id, args.password, generate=not args.no_password
        ),
        weak=f" registered, {_WEAK}",
        given=" registered with the password given",
    )


def station_list(args: argparse.Namespace) -> int:
    rows = run(lambda tools: tools.admission.all())
    print(f"{'STATION':48} {'STATE':12} {'PASSWORD':8} {'OCPP':6} LAST SEEN")
    for row in rows:
        seen = row.last_seen.isoformat(timespec="seconds") if row.last_seen else "-"
        print(
            f"{row.station_id:48} {_state(row):12} {'yes' if row.has_password else 'no':8} "
            f"{row.ocpp_version or '-':6} {seen}"
        )
    return 0


def station_show(args: argparse.Namespace) -> int:
    try:
        row = run(lambda tools: tools.admission.show(args.station_id))
    except _admission_errors() as exc:
        return _fail(exc)
    print(f"station:   {row.station_id}")
    print(f"state:     {_state(row)}")
    print(f"password:  {'yes (HTTP Basic)' if row.has_password else 'none'}")
    print(f"ocpp:      {row.ocpp_version or '-'}")
    print(f"last seen: {row.last_seen.isoformat(timespec='seconds') if row.last_seen else '-'}")
    return 0


def _set_disabled(args: argparse.Namespace, disabled: bool) -> int:
    try:
        run(lambda tools: tools.admission.set_disabled(args.station_id, disabled))
    except _admission_errors() as exc:
        return _fail(exc)
    print(f"station {args.station_id} {'disabled' if disabled else 'enabled'}")
    return 0


def station_disable(args: argparse.Namespace) -> int:
    return _set_disabled(args, True)


def station_enable(args: argparse.Namespace) -> int:
    return _set_disabled(args, False)


def station_remove(args: argparse.Namespace) -> int:
    try:
        run(lambda tools: tools.admission.remove(args.station_id))
    except _admission_errors() as exc:
        return _fail(exc)
    print(f"station {args.station_id} removed from the registry")
    return 0


def station_set_password(args: argparse.Namespace) -> int:
    if args.via_station:
        if args.no_password:
            return _fail(ValueError("--via-station sends a password; --no-password has none"))
        return _set_password_via_gateway(args)
    return _password_step(
        lambda tools: tools.admission.set_password(
            args.station_id, args.password, generate=not args.no_password
        ),
        weak=f" is now {_WEAK}",
        given=": password changed",
    )


def _set_password_via_gateway(args: argparse.Namespace) -> int:
    """Only the gateway holding the station's socket can ask it: through its operator API."""
    import os

    import httpx

    base = (args.gateway or Settings().public_url).rstrip("/")
    key = args.api_key or os.environ.get("CHARGEGATE_API_KEY")
    if not key:
        return _fail(ValueError("--via-station needs --api-key or CHARGEGATE_API_KEY"))
    body: dict[str, Any] = {"viaStation": True}
    if args.password is not None:
        body["password"] = args.password
    try:
        response = httpx.put(
            f"{base}/stations/{args.station_id}/password",
            json=body,
            headers={"X-API-Key": key},
            timeout=120.0,
        )
    except httpx.HTTPError as exc:
        return _fail(ValueError(f"cannot reach the gateway at {base}: {exc}"))
    if response.status_code != 200:
        return _fail(ValueError(f"HTTP {response.status_code}: {response.text[:300]}"))
    answer = response.json()
    print(f"station {args.station_id} took the new password ({answer.get('stationStatus')})")
    if answer.get("password"):
        _print_password(args.station_id, answer["password"])
    return 0
