"""`chargegate serve | party add/list | sim | db upgrade`."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
from collections.abc import Sequence
from typing import TypeVar

from chargegate.open_files import raise_open_file_limit
from chargegate.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")


# The collector's thresholds while serving (Python's default: 700, 10, 10). A full collection
# walks every live object: with 10,000 stations connected, about 0.7 s with the event loop
# stopped, and with the default thresholds one came about once a minute under heartbeats alone
# (objects that outlive two young collections count toward the next full one), and every few
# seconds while stations connect. With young collections every 50,000 allocations instead of
# 700, what a heartbeat or a command allocates has ended by then and is freed by its
# reference count, so next to nothing is promoted and full collections stay rare: 10,000
# stations, heartbeat every 10 s, 120 s measured: heartbeat p99 81.7 -> 4.4 ms, no full
# collection after start-up instead of one of 0.73 s, boot 22.6 -> 17.1 s. Objects in cycles
# wait a little longer for the collector; everything else is freed when last used, as before.
GC_THRESHOLDS = (50_000, 20, 10)


def settle(app: T) -> T:
    """Leaves what start-up built (modules, routes, schemas, SQLAlchemy's metadata: some 160,000
    objects) out of the garbage collector's full collections, which otherwise walked all of it:
    measured at 50 commands in flight, a full collection (about one every 20 s) paused the
    event loop 190 ms; after this, 40 ms (throughput: no change beyond the machine's noise).
    Nothing start-up built is meant to be freed. Then sets `GC_THRESHOLDS`."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return app


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from chargegate.app import create_app

    before, after = raise_open_file_limit()
    log.info(
        "open-file limit %d%s: at most about that many stations and peer connections",
        after,
        f" (raised from {before})" if after > before else "",
    )
    settings = Settings()
    if settings.public_url == Settings.model_fields["public_url"].default and (
        args.host,
        args.port,
    ) != ("127.0.0.1", 8080):
        settings.public_url = f"http://{args.host}:{args.port}"
    uvicorn.run(
        settle(create_app(settings)),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        ws_per_message_deflate=settings.ws_per_message_deflate,
        ws_ping_interval=None,  # OCPP heartbeats keep the line alive
    )
    return 0


async def _with_parties(job):  # type: ignore[no-untyped-def]
    from chargegate.service.parties import PartyService
    from chargegate.store import db
    from chargegate.store.party_store import SqlPartyStore

    settings = Settings()
    await db.upgrade_async(settings.database_url)
    engine = db.make_engine(settings.database_url)
    try:
        return await job(PartyService(SqlPartyStore(db.make_sessionmaker(engine))))
    finally:
        await engine.dispose()


def _party_add(args: argparse.Namespace) -> int:
    from chargegate.service.parties import PartyExists

    async def job(parties):  # type: ignore[no-untyped-def]
        return await parties.add(
            role=args.role,
            country_code=args.country_code,
            party_id=args.party_id,
            name=args.name,
            profile=args.profile,
        )

    try:
        party, token_a = asyncio.run(_with_parties(job))
    except (ValueError, PartyExists) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"registered {party.role} {party.country_code}/{party.party_id}"
        f"{' (' + party.profile + ' profile)' if party.profile else ''}; "
        "give it this one-time credentials token (token A):"
    )
    print(token_a)
    return 0


def _party_list(args: argparse.Namespace) -> int:
    async def job(parties):  # type: ignore[no-untyped-def]
        return await parties.all()

    rows = asyncio.run(_with_parties(job))
    print(f"{'ID':>4}  {'ROLE':5} {'PARTY':7} {'STATE':13} {'VERSION':8} {'PROFILE':8} NAME")
    for p in rows:
        print(
            f"{p.id:>4}  {p.role:5} {p.country_code}/{p.party_id:4} {p.state:13} "
            f"{p.ocpi_version or '-':8} {p.profile or '-':8} {p.name or ''}"
        )
    return 0


def _operator_key_add(args: argparse.Namespace) -> int:
    from chargegate.service.operator_keys import OperatorKeys
    from chargegate.store import db
    from chargegate.store.operator_key_store import SqlOperatorKeyStore

    async def job() -> str:
        settings = Settings()
        await db.upgrade_async(settings.database_url)
        engine = db.make_engine(settings.database_url)
        try:
            return await OperatorKeys(SqlOperatorKeyStore(db.make_sessionmaker(engine))).add(
                args.name, tuple(args.scope or ("operator", "read"))
            )
        finally:
            await engine.dispose()

    try:
        key = asyncio.run(job())
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"operator API key {args.name!r} (send it as the X-API-Key header):")
    print(key)
    return 0


def _station_map(args: argparse.Namespace) -> int:
    from chargegate.service.stations import MappingConflict, StationMapping
    from chargegate.store import db
    from chargegate.store.station_mapping_store import SqlStationMappingStore

    evses: dict[int, str] = {}
    for item in args.evse or []:
        connector, sep, uid = item.partition("=")
        if not sep or not connector.isdigit() or not uid:
            print(f"error: --evse wants CONNECTOR=UID, got {item!r}", file=sys.stderr)
            return 2
        evses[int(connector)] = uid

    async def job() -> None:
        settings = Settings()
        await db.upgrade_async(settings.database_url)
        engine = db.make_engine(settings.database_url)
        try:
            await StationMapping(SqlStationMappingStore(db.make_sessionmaker(engine))).map(
                args.station_id, location_id=args.location_id, evses=evses
            )
        finally:
            await engine.dispose()

    try:
        asyncio.run(job())
    except MappingConflict as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"station {args.station_id} mapped")
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    from chargegate.store import db

    db.upgrade(Settings().database_url)
    print("database schema is up to date")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chargegate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway (OCPI, OCPP, docs) on one port")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=_serve)

    party = sub.add_parser("party", help="OCPI peers").add_subparsers(dest="party", required=True)
    add = party.add_parser("add", help="register a peer; prints its token A last")
    add.add_argument("--role", default="EMSP", choices=["EMSP", "CPO", "HUB", "NSP", "OTHER"])
    add.add_argument("--country-code", required=True)
    add.add_argument("--party-id", required=True)
    add.add_argument("--name")
    add.add_argument("--profile", choices=["gireve"])
    add.set_defaults(func=_party_add)
    lst = party.add_parser("list", help="peers and their handshake state")
    lst.set_defaults(func=_party_list)

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
    key_add.set_defaults(func=_operator_key_add)

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
    mapping.set_defaults(func=_station_map)

    dbp = sub.add_parser("db", help="database").add_subparsers(dest="db", required=True)
    dbp.add_parser("upgrade", help="apply migrations").set_defaults(func=_db_upgrade)

    from chargegate.sim import cli as sim_cli

    sim_cli.add_parser(sub)

    from chargegate import cli_emsp

    cli_emsp.add_parsers(sub)
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


if __name__ == "__main__":
    sys.exit(main())
