"""`chargegate party | operator-key | station | db`: set-up done on the database, with or
without a gateway running."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from chargegate.settings import Settings

if TYPE_CHECKING:
    from chargegate.bootstrap import AdminTools

# The gateway's modules are imported when a command runs, not for `--help` or another command.

T = TypeVar("T")


def run(job: Callable[[AdminTools], Awaitable[T]]) -> T:
    """Run one job with the admin use cases over the configured database."""

    from chargegate.bootstrap import admin_tools

    async def with_tools() -> T:
        async with admin_tools(Settings()) as tools:
            return await job(tools)

    return asyncio.run(with_tools())


def party_add(args: argparse.Namespace) -> int:
    from chargegate.service.parties import PartyExists

    try:
        party, token_a = run(
            lambda tools: tools.parties.add(
                role=args.role,
                country_code=args.country_code,
                party_id=args.party_id,
                name=args.name,
                profile=args.profile,
            )
        )
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


def party_list(args: argparse.Namespace) -> int:
    rows = run(lambda tools: tools.parties.all())
    print(f"{'ID':>4}  {'ROLE':5} {'PARTY':7} {'STATE':13} {'VERSION':8} {'PROFILE':8} NAME")
    for p in rows:
        print(
            f"{p.id:>4}  {p.role:5} {p.country_code}/{p.party_id:4} {p.state:13} "
            f"{p.ocpi_version or '-':8} {p.profile or '-':8} {p.name or ''}"
        )
    return 0


def operator_key_add(args: argparse.Namespace) -> int:
    scopes = tuple(args.scope or ("operator", "read"))
    try:
        key = run(lambda tools: tools.operator_keys.add(args.name, scopes))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"operator API key {args.name!r} (send it as the X-API-Key header):")
    print(key)
    return 0


def station_map(args: argparse.Namespace) -> int:
    evses: dict[int, str] = {}
    for item in args.evse or []:
        connector, sep, uid = item.partition("=")
        if not sep or not connector.isdigit() or not uid:
            print(f"error: --evse wants CONNECTOR=UID, got {item!r}", file=sys.stderr)
            return 2
        evses[int(connector)] = uid
    from chargegate.service.stations import MappingConflict

    try:
        run(
            lambda tools: tools.stations.map(
                args.station_id, location_id=args.location_id, evses=evses
            )
        )
    except MappingConflict as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"station {args.station_id} mapped")
    return 0


def db_upgrade(args: argparse.Namespace) -> int:
    from chargegate.store import db

    db.upgrade(Settings().database_url)
    print("database schema is up to date")
    return 0
