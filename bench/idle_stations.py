"""Lean idle OCPP 1.6J stations on raw `websockets`, for many connections per process: connect,
BootNotification, one StatusNotification per connector (0 included), then Heartbeat at the
interval the CSMS returns, timing each from sending it to its CALLRESULT. CSMS calls get a plain
Accepted (RemoteStartTransaction included), so commands can be timed with K stations connected.

`python -m bench.idle_stations --url ws://127.0.0.1:8080/ocpp --prefix K0- --count 2500`
prints `READY <booted> <failed> <seconds>` once every station has booted or failed, then reads
commands on stdin, one per line: `reset` (forget samples; answers `OK`), `report` (answers one
JSON line: heartbeat round trips in ms, failures), `quit`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import random
import signal
import sys
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from bench.common import raise_fd_limit, run_async, station_id

log = logging.getLogger("bench.idle_stations")
CALL, CALLRESULT, CALLERROR = 2, 3, 4
CALL_TIMEOUT = 60.0
ANSWERS: dict[str, dict[str, Any]] = {
    "RemoteStartTransaction": {"status": "Accepted"},
    "RemoteStopTransaction": {"status": "Accepted"},
    "ReserveNow": {"status": "Accepted"},
    "CancelReservation": {"status": "Accepted"},
    "UnlockConnector": {"status": "Unlocked"},
}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Stats:
    def __init__(self) -> None:
        self.rtts_ms: list[float] = []
        self.heartbeat_errors = 0
        self.booted = 0
        self.failed = 0
        self.lost = 0
        self.calls_answered = 0

    def reset(self) -> None:
        self.rtts_ms = []
        self.heartbeat_errors = 0

    def report(self) -> dict[str, Any]:
        return {
            "rtts_ms": [round(x, 3) for x in self.rtts_ms],
            "heartbeat_errors": self.heartbeat_errors,
            "booted": self.booted,
            "failed": self.failed,
            "lost": self.lost,
            "calls_answered": self.calls_answered,
        }


class IdleStation:
    def __init__(self, sid: str, url: str, connectors: int, stats: Stats) -> None:
        self.id = sid
        self.url = f"{url.rstrip('/')}/{sid}"
        self.connectors = connectors
        self.stats = stats
        self.ws: ClientConnection | None = None
        self.pending: dict[str, asyncio.Future[list[Any]]] = {}
        self._ids = itertools.count()

    async def call(self, action: str, payload: dict[str, Any]) -> list[Any]:
        assert self.ws is not None
        unique_id = f"{self.id}.{next(self._ids)}"
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self.pending[unique_id] = future
        try:
            await self.ws.send(json.dumps([CALL, unique_id, action, payload]))
            return await asyncio.wait_for(future, CALL_TIMEOUT)
        finally:
            self.pending.pop(unique_id, None)

    async def read(self) -> None:
        assert self.ws is not None
        async for raw in self.ws:
            message = json.loads(raw)
            kind, unique_id = message[0], message[1]
            if kind == CALL:
                answer = ANSWERS.get(message[2])
                if answer is None:
                    reply: list[Any] = [CALLERROR, unique_id, "NotImplemented", "", {}]
                else:
                    reply = [CALLRESULT, unique_id, answer]
                self.stats.calls_answered += 1
                await self.ws.send(json.dumps(reply))
            else:
                future = self.pending.get(unique_id)
                if future is not None and not future.done():
                    future.set_result(message)

    async def boot(self, gate: asyncio.Semaphore) -> float:
        """Connect, boot and report statuses (at most `gate` stations at once); return the
        heartbeat interval the CSMS asked for."""
        async with gate:
            self.ws = await connect(
                self.url,
                subprotocols=[Subprotocol("ocpp1.6")],
                compression=None,
                ping_interval=None,
                open_timeout=120,
                close_timeout=1,
                max_queue=16,
            )
            self._reader = asyncio.create_task(self.read())
            boot = await self.call(
                "BootNotification",
                {"chargePointVendor": "chargegate-bench", "chargePointModel": "IdleStation"},
            )
            if boot[0] != CALLRESULT or boot[2].get("status") != "Accepted":
                raise RuntimeError(f"{self.id}: boot not accepted: {boot}")
            for connector in range(self.connectors + 1):
                await self.call(
                    "StatusNotification",
                    {
                        "connectorId": connector,
                        "errorCode": "NoError",
                        "status": "Available",
                        "timestamp": _now(),
                    },
                )
        return float(boot[2].get("interval") or 60)

    async def heartbeats(self, interval: float) -> None:
        # Spread over the interval, as stations booted at different times would be.
        await asyncio.sleep(random.uniform(0, interval))
        while True:
            sent = time.perf_counter()
            try:
                reply = await self.call("Heartbeat", {})
            except ConnectionClosed:
                return
            except TimeoutError:
                self.stats.heartbeat_errors += 1
            else:
                if reply[0] == CALLRESULT:
                    self.stats.rtts_ms.append((time.perf_counter() - sent) * 1000)
                else:
                    self.stats.heartbeat_errors += 1
            await asyncio.sleep(max(0.0, interval - (time.perf_counter() - sent)))

    async def run(self, gate: asyncio.Semaphore, booted: asyncio.Queue[bool]) -> None:
        try:
            interval = await self.boot(gate)
        except Exception as exc:  # any failure to connect or boot counts the same
            log.warning("%s: could not connect and boot: %r", self.id, exc)
            self.stats.failed += 1
            await booted.put(False)
            return
        self.stats.booted += 1
        await booted.put(True)
        beating = asyncio.create_task(self.heartbeats(interval))
        try:
            await self._reader
        except ConnectionClosed:
            pass
        finally:
            beating.cancel()
        self.stats.lost += 1
        log.warning("%s: connection lost", self.id)


async def serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    stats = Stats()
    gate = asyncio.Semaphore(args.concurrency)
    booted: asyncio.Queue[bool] = asyncio.Queue()
    stations = [
        IdleStation(station_id(args.prefix, i), args.url, args.connectors, stats)
        for i in range(args.count)
    ]
    started = time.monotonic()
    tasks = [asyncio.create_task(s.run(gate, booted)) for s in stations]
    for _ in stations:
        await booted.get()
    print(f"READY {stats.booted} {stats.failed} {time.monotonic() - started:.2f}", flush=True)

    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)

    async def commands() -> None:
        while True:
            line = (await stdin.readline()).decode().strip()
            if line in ("", "quit"):
                return
            if line == "reset":
                stats.reset()
                print("OK", flush=True)
            elif line == "report":
                print(json.dumps(stats.report()), flush=True)
            else:
                print(json.dumps({"error": f"unknown command {line!r}"}), flush=True)

    reading = asyncio.create_task(commands())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
    # No orderly close of thousands of sockets: the process ends and the kernel closes them.
    for task in tasks:
        task.cancel()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.idle_stations", description=__doc__)
    parser.add_argument("--url", required=True, help="e.g. ws://127.0.0.1:8080/ocpp")
    parser.add_argument("--prefix", default="IDLE-")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--connectors", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=100, help="stations booting at once")
    args = parser.parse_args(argv)
    raise_fd_limit()
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run_async(serve(args))
    sys.stdout.flush()
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
