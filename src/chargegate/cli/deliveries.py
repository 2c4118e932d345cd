"""`chargegate delivery list-dead | retry | drop`: the dead letters, deliveries a peer refused
for good or that outlived their horizon (docs/guarantees.md#dead-letters)."""

from __future__ import annotations

import argparse
import sys

from chargegate.domain.clock import utcnow

from .admin import run


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    delivery = sub.add_parser("delivery", help="deliveries to peers").add_subparsers(
        dest="delivery", required=True
    )
    listing = delivery.add_parser("list-dead", help="dead letters, oldest first")
    listing.add_argument("--limit", type=int, default=100)
    listing.set_defaults(func=list_dead)
    for name, func, text in (
        ("retry", retry, "send a dead letter again, from scratch"),
        ("drop", drop, "drop a dead letter (it stays in the table, marked dropped)"),
    ):
        one = delivery.add_parser(name, help=text)
        one.add_argument("id", type=int)
        one.set_defaults(func=func)


def list_dead(args: argparse.Namespace) -> int:
    letters = run(lambda tools: tools.dead_letters.list(args.limit))
    print(f"{'ID':>8} {'KIND':14} {'PEER':8} {'TRIES':>5} {'DEAD SINCE':25} COMMAND  LAST ERROR")
    for d in letters:
        error = (d.last_error or "-").replace("\n", " ")[:80]
        print(
            f"{d.id:>8} {d.kind:14} {d.peer:8} {d.attempts:>5} "
            f"{d.gave_up_at.isoformat(timespec='seconds'):25} "
            f"{d.command_id or d.correlation_id or '-'}  {error}"
        )
    return 0


def retry(args: argparse.Namespace) -> int:
    if not run(lambda tools: tools.dead_letters.retry(args.id, utcnow())):
        print(f"error: no dead letter {args.id}", file=sys.stderr)
        return 2
    print(f"dead letter {args.id} is due again")
    return 0


def drop(args: argparse.Namespace) -> int:
    if not run(lambda tools: tools.dead_letters.drop(args.id, utcnow())):
        print(f"error: no dead letter {args.id}", file=sys.stderr)
        return 2
    print(f"dead letter {args.id} dropped")
    return 0
