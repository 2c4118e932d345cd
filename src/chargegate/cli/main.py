"""`chargegate serve | party | operator-key | station | location | delivery | db | peer | emsp |
sim`."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from . import admin, deliveries, emsp, locations, stations
from .serve import serve as serve_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chargegate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway (OCPI, OCPP, docs) on one port")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=serve_command)

    party = sub.add_parser("party", help="OCPI peers").add_subparsers(dest="party", required=True)
    add = party.add_parser("add", help="register a peer; prints its token A last")
    add.add_argument("--role", default="EMSP", choices=["EMSP", "CPO", "HUB", "NSP", "OTHER"])
    add.add_argument("--country-code", required=True)
    add.add_argument("--party-id", required=True)
    add.add_argument("--name")
    add.add_argument("--profile", choices=["gireve"])
    add.set_defaults(func=admin.party_add)
    lst = party.add_parser("list", help="peers and their handshake state")
    lst.set_defaults(func=admin.party_list)

    keys = sub.add_parser("operator-key", help="operator API keys").add_subparsers(
        dest="operator_key", required=True
    )
    key_add = keys.add_parser("add", help="create a key; prints it last")
    key_add.add_argument("--name", required=True)
    key_add.add_argument(
        "--scope",
        action="append",
        choices=["operator", "read", "driver"],
        help="repeat for several (default: operator and read)",
    )
    key_add.set_defaults(func=admin.operator_key_add)

    station = sub.add_parser("station", help="stations").add_subparsers(
        dest="station", required=True
    )
    mapping = station.add_parser(
        "map", help="give a station the OCPI Location id / EVSE uids a partner expects"
    )
    mapping.add_argument("station_id")
    mapping.add_argument("--location-id", help="OCPI Location id ('' to unmap)")
    mapping.add_argument(
        "--evse", action="append", metavar="CONNECTOR=UID", help="OCPI EVSE uid of a connector"
    )
    mapping.set_defaults(func=admin.station_map)
    stations.add_parsers(station)

    locations.add_parsers(sub)
    deliveries.add_parsers(sub)

    dbp = sub.add_parser("db", help="database").add_subparsers(dest="db", required=True)
    dbp.add_parser("upgrade", help="apply migrations").set_defaults(func=admin.db_upgrade)

    from chargegate.sim import cli as sim_cli

    sim_cli.add_parser(sub)

    emsp.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # The ocpp library logs every frame at INFO; frames are in the communication log already.
    logging.getLogger("ocpp").setLevel(logging.WARNING)
    # httpx logs every request at INFO; for the calls still made with it (the eMSP side's
    # commands, credentials handshakes) that is a line per request of noise in an operator's log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    result = args.func(args)
    return int(result or 0)
