"""`chargegate sim`: run a fleet of simulated OCPP 1.6J or 2.0.1 stations until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import ssl
import sys

from chargegate.sim.fleet import run_fleet
from chargegate.sim.script import (
    DEFAULT_BEHAVIOURS,
    OCPP_VERSIONS,
    Behaviour,
    Script,
    csms_actions,
    parse_behaviour,
    validate,
)

log = logging.getLogger(__name__)


def _answer(text: str) -> tuple[str, Behaviour]:
    """ACTION=BEHAVIOUR that makes sense in some OCPP version; build_script checks it against
    the chosen one, which argparse may not have read yet."""
    action, sep, behaviour = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected ACTION=BEHAVIOUR, got {text!r}")
    action = action.strip()
    versions = [version for version in OCPP_VERSIONS if action in csms_actions(version)]
    if not versions:
        raise argparse.ArgumentTypeError(
            f"unknown action {action!r}: no CSMS sends it to a station in OCPP "
            f"{' or '.join(OCPP_VERSIONS)}"
        )
    try:
        parsed = parse_behaviour(behaviour.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    # Problem → the versions that have it, so that a pair wrong everywhere is told once.
    problems: dict[str, list[str]] = {}
    for version in versions:
        try:
            return action, validate(action, parsed, version)
        except ValueError as exc:
            problems.setdefault(str(exc), []).append(version)
    raise argparse.ArgumentTypeError(
        "; ".join(f"{problem} (OCPP {', '.join(where)})" for problem, where in problems.items())
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "sim",
        help="run simulated OCPP 1.6J or 2.0.1 charge points against a CSMS",
        description=(
            "Connect N simulated OCPP 1.6J or 2.0.1 stations to URL/<station id>, boot them and "
            "answer CSMS commands as scripted, until Ctrl-C."
        ),
    )
    parser.add_argument("--url", required=True, help="CSMS base URL, e.g. ws://127.0.0.1:8080/ocpp")
    parser.add_argument(
        "--ocpp", choices=OCPP_VERSIONS, default="1.6", help="OCPP version (default 1.6)"
    )
    parser.add_argument("--stations", type=_positive_int, default=1, help="how many (default 1)")
    parser.add_argument(
        "--connectors",
        type=_positive_int,
        default=2,
        help="connectors per station; EVSEs of one connector with --ocpp 2.0.1 (default 2)",
    )
    parser.add_argument("--prefix", default="SIM-", help="station id prefix (default SIM-)")
    parser.add_argument(
        "--answer",
        type=_answer,
        action="append",
        default=[],
        metavar="ACTION=BEHAVIOUR",
        help=(
            "how every station answers ACTION, e.g. ReserveNow=occupied; repeatable. "
            f"Behaviours: {', '.join(b.value for b in Behaviour)}"
        ),
    )
    parser.add_argument(
        "--default-answer",
        default=Behaviour.ACCEPT.value,
        choices=sorted(b.value for b in DEFAULT_BEHAVIOURS),
        help="behaviour for actions without --answer (default accept)",
    )
    parser.add_argument(
        "--heartbeat",
        type=float,
        default=None,
        metavar="SECONDS",
        help="heartbeat interval, overriding the one the CSMS returns at boot",
    )
    parser.add_argument(
        "--reconnect",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="delay before reconnecting a lost station (default 5)",
    )
    parser.add_argument(
        "--log-frames", action="store_true", help="log every OCPP frame sent and received"
    )
    parser.add_argument(
        "--password",
        help=(
            "HTTP Basic password every station presents (OCPP Security Profile 1, or 2 over"
            " wss://); default: none"
        ),
    )
    parser.add_argument(
        "--ca-file",
        metavar="PEM",
        help="CA certificate(s) to trust for a wss:// URL (default: the system's)",
    )
    parser.set_defaults(func=run)


def build_script(args: argparse.Namespace) -> Script:
    """ValueError if an --answer makes no sense in the chosen OCPP version."""
    return Script(args.default_answer, dict(args.answer), version=args.ocpp)


def _ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """For wss:// only: the system's trust store, or the --ca-file given."""
    if not args.url.startswith("wss:"):
        return None
    return ssl.create_default_context(cafile=args.ca_file)


def run(args: argparse.Namespace) -> int:
    try:
        build_script(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # Per-frame logs of many stations would drown the connect/boot lines the operator wants.
    logging.getLogger("chargegate.sim.wire").setLevel(
        logging.INFO if args.log_frames else logging.WARNING
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_async(args))
    return 0


async def run_async(args: argparse.Namespace, stop: asyncio.Event | None = None) -> None:
    """Run the fleet until `stop` is set (or, without it, until cancelled)."""
    script = build_script(args)
    log.info(
        "starting %d OCPP %s stations (%s*) against %s with %r",
        args.stations,
        args.ocpp,
        args.prefix,
        args.url,
        script,
    )
    fleet = await run_fleet(
        args.url,
        args.stations,
        args.connectors,
        script,
        prefix=args.prefix,
        heartbeat_interval=args.heartbeat,
        ready_timeout=None,
        reconnect_delay=args.reconnect,
        ocpp=args.ocpp,
        password=args.password,
        ssl_context=_ssl_context(args),
    )
    try:
        if stop is None:
            await fleet.wait()
        else:
            await stop.wait()
    finally:
        await fleet.close()
        log.info("stopped %d stations", args.stations)
