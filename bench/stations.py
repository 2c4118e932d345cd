"""Simulated stations for the command benchmark: chargegate's own simulator (`run_fleet`,
`SimulatedStation16`, a shared `Script`), as `chargegate sim` runs it, but with
`auto_transactions=False`, which the CLI has no switch for. With auto transactions every accepted
RemoteStartTransaction would be followed by StatusNotification/StartTransaction traffic and
Session pushes, and the next start on that connector would be refused by the station: the
benchmark would no longer measure one command's path.

`python -m bench.stations --url ws://127.0.0.1:8080/ocpp --stations 200` prints one line
`booted N` on stdout once all stations have booted (and logs `booted,` per station), then runs
until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from bench.common import raise_fd_limit, run_async
from chargegate.sim.fleet import run_fleet
from chargegate.sim.script import Script


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    script = Script("accept", {"RemoteStartTransaction": "accept"})
    fleet = await run_fleet(
        args.url,
        args.stations,
        args.connectors,
        script,
        prefix=args.prefix,
        ready_timeout=args.ready_timeout,
        auto_transactions=args.auto_transactions,
    )
    try:
        print(f"booted {len(fleet)}", flush=True)
        await stop.wait()
    finally:
        await fleet.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stations", description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--stations", type=int, default=200)
    parser.add_argument("--connectors", type=int, default=2)
    parser.add_argument("--prefix", default="SIM-")
    parser.add_argument("--ready-timeout", type=float, default=120.0)
    parser.add_argument("--auto-transactions", action="store_true")
    args = parser.parse_args(argv)
    raise_fd_limit()
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # The per-station "booted," line, as under `chargegate sim`; no per-frame logs.
    logging.getLogger("chargegate.sim.station16").setLevel(logging.INFO)
    run_async(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
