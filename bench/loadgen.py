"""The eMSP load generator: registers with the gateway (or not, against the floor), serves its
callback endpoint, keeps N START_SESSION commands in flight and times each one from the POST
being sent to its CommandResult arriving at `response_url`.

`python -m bench.loadgen --target http://127.0.0.1:8080 --token-a TOKEN --station SIM-:200
--levels 1,10 --seconds 10` prints one JSON line per level on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.types import Receive, Scope, Send

from bench.common import (
    EmspIdentity,
    auth_header,
    free_port,
    handshake,
    int_list,
    ok_envelope,
    percentile,
    run_async,
    start_session_body,
    station_id,
)

# A result not back within this many seconds counts as lost (the gateway's own timeout is longer).
RESULT_WAIT = 120.0


class KeepAliveConnection:
    """One HTTP/1.1 keep-alive connection, for one request at a time: far less CPU per request
    than httpx, so that the load generator is not what limits the floor. Enough HTTP for
    uvicorn's answers (Content-Length bodies)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            + "\r\n"
        ).encode()
        for attempt in (1, 2):
            fresh = self._writer is None
            if self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            assert self._reader is not None and self._writer is not None
            try:
                self._writer.write(head + body)
                return await self._response(self._reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                # A kept-alive connection the server closed meanwhile (uvicorn closes idle ones
                # after 5 s, e.g. while a level drains): send again on a new one.
                if fresh or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _response(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        status_line = await reader.readline()
        if not status_line:
            raise _StaleConnection("closed before answering")
        status = int(status_line.split()[1])
        length = 0
        close = False
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        body = await reader.readexactly(length)
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


class _StaleConnection(ConnectionError):
    pass


class Picker:
    """Round-robin over stations, skipping those with a command in flight (the gateway sends one
    OCPP call per station at a time, and the stations must not be what is measured); EVSEs of a
    station take turns."""

    def __init__(self, stations: list[str], connectors: int) -> None:
        self.stations = stations
        self.connectors = connectors
        self._busy: set[int] = set()
        self._cursor = 0
        self._next_connector = [0] * len(stations)

    def acquire(self) -> tuple[int, str, str]:
        n = len(self.stations)
        index = self._cursor % n
        for step in range(n):
            candidate = (self._cursor + step) % n
            if candidate not in self._busy:
                index = candidate
                break
        self._cursor = index + 1
        self._busy.add(index)
        connector = self._next_connector[index] % self.connectors + 1
        self._next_connector[index] += 1
        station = self.stations[index]
        return index, station, f"{station}-{connector}"

    def release(self, index: int) -> None:
        self._busy.discard(index)


@dataclass
class Level:
    inflight: int  # commands kept in flight (closed loop); 0 for a rate
    rate_target: float = 0.0  # commands sent per second whatever comes back (open loop)
    start: float = 0.0  # measurement window, perf_counter seconds
    end: float = 0.0
    completed: int = 0  # results that arrived in the window
    latencies: list[float] = field(default_factory=list)  # of commands sent in the window
    sync: list[float] = field(default_factory=list)
    results: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    issued: int = 0

    def in_window(self, t: float) -> bool:
        return self.start <= t <= self.end

    def record(self, sent: float, answered: float, arrived: float, result: str) -> None:
        """Throughput counts the results that arrived in the window; latency, the commands
        sent in it, however late they come back. A command sent in the warm-up is not the
        steady state: at the start of a level new connections open all at once
        (docs/performance.md#levels-back-to-back)."""
        if self.in_window(arrived):
            self.completed += 1
            self.results[result] += 1
        if self.in_window(sent):
            self.latencies.append(arrived - sent)
            self.sync.append(answered - sent)

    def summary(self) -> dict[str, Any]:
        seconds = self.end - self.start
        ms = [x * 1000 for x in self.latencies]
        sync_ms = [x * 1000 for x in self.sync]
        return {
            "inflight": self.inflight,
            "rate_target": self.rate_target,
            "seconds": round(seconds, 3),
            "completed": self.completed,
            "rate": self.completed / seconds if seconds > 0 else 0.0,
            "p50": percentile(ms, 50),
            "p95": percentile(ms, 95),
            "p99": percentile(ms, 99),
            "max": max(ms) if ms else None,
            "sync_p50": percentile(sync_ms, 50),
            "sync_p99": percentile(sync_ms, 99),
            "results": dict(self.results),
            "errors": dict(self.errors),
            "issued": self.issued,
        }


class LoadGenerator:
    def __init__(self, args: argparse.Namespace, port: int) -> None:
        self.args = args
        self.me = EmspIdentity(base_url=f"http://127.0.0.1:{port}")
        self.port = port
        self.pending: dict[str, asyncio.Future[tuple[str, float]]] = {}
        self.callbacks = Counter[str]()
        stations = [station_id(prefix, i) for prefix, count in args.station for i in range(count)]
        if not stations:
            raise SystemExit("no stations given (--station PREFIX:COUNT)")
        self.picker = Picker(stations, args.connectors)
        self._refs = itertools.count()
        self._callback_prefix = f"/ocpi/emsp/{self.me.version}/commands/START_SESSION/"
        self.connections: list[KeepAliveConnection] = []
        # The START_SESSION request's path and headers, set once the handshake gave token C.
        self._command_path = ""
        self._command_headers: dict[str, str] = {}

    # -- our own OCPI endpoints ----------------------------------------------------------------

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Raw ASGI (the callback is on the measured path): versions and details for the
        handshake, and anything the gateway POSTs/PUTs/PATCHes under /ocpi/emsp/."""
        if scope["type"] != "http":
            return
        arrived = time.perf_counter()
        raw = b""
        more = True
        while more:
            message = await receive()
            raw += message.get("body", b"")
            more = message.get("more_body", False)
        path: str = scope["path"]
        me = self.me
        status, data = 200, ok_envelope()
        if path.startswith(self._callback_prefix):
            ref = path.rsplit("/", 1)[-1]
            try:
                result = str(json.loads(raw).get("result"))
            except (ValueError, AttributeError):
                result = "UNPARSABLE"
            future = self.pending.pop(ref, None)
            if future is not None and not future.done():
                future.set_result((result, arrived))
            else:
                self.callbacks["unexpected"] += 1
        elif path.startswith("/ocpi/emsp/"):
            module = path.removeprefix(f"/ocpi/emsp/{me.version}/").split("/")[0]
            self.callbacks[f"{scope['method']} {module}"] += 1
        elif path in ("/ocpi/versions", f"/ocpi/{me.version}"):
            authorization = dict(scope["headers"]).get(b"authorization", b"").decode()
            if not me.token_b_ok(authorization):
                status, data = 401, {"status_code": 2000, "status_message": "bad token"}
            elif path == "/ocpi/versions":
                data = ok_envelope(me.versions())
            else:
                data = ok_envelope(me.details())
        else:
            status, data = 404, {"status_code": 2000, "status_message": "not found"}
        body = json.dumps(data).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    # -- load ------------------------------------------------------------------------------------

    async def run(self) -> None:
        args = self.args
        config = uvicorn.Config(
            self.app,
            interface="asgi3",
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            backlog=4096,
        )
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                serving.result()
                raise RuntimeError("callback server stopped")
            await asyncio.sleep(0.01)
        try:
            async with httpx.AsyncClient(timeout=30.0) as client:
                if args.token_a:
                    await handshake(client, args.target, args.token_a, self.me)
                else:
                    self.me.token_c = "floor-needs-no-token"
                # Once, not per command: the load generator shares the cores it measures on.
                self._command_path = f"/ocpi/cpo/{self.me.version}/commands/START_SESSION"
                assert self.me.token_c is not None
                self._command_headers = {
                    "Authorization": auth_header(self.me.token_c, self.me.version)
                }
                print(json.dumps({"ready": True}), flush=True)
                runs: list[tuple[Callable[[int], Awaitable[Level]], int]]
                runs = [(self.run_level, n) for n in args.levels]
                runs += [(self.run_rate, r) for r in args.rates]
                for run_one, size in runs:
                    # Stepped: stdin's end (the benchmark gone) ends the run, not a level.
                    if args.stepped and not await asyncio.to_thread(sys.stdin.readline):
                        break
                    level = await run_one(size)
                    summary = level.summary()
                    summary["callbacks"] = dict(self.callbacks)
                    print(json.dumps(summary), flush=True)
        finally:
            for connection in self.connections:
                connection.close()
            server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(serving, 10)

    def _origin(self) -> tuple[str, int]:
        target = httpx.URL(self.args.target)
        return target.host, target.port or 80

    def _level(self, inflight: int, rate: float = 0.0) -> Level:
        level = Level(inflight, rate)
        level.start = time.perf_counter() + self.args.warmup
        level.end = level.start + self.args.seconds
        return level

    async def run_level(self, inflight: int) -> Level:
        level = self._level(inflight)
        host, port = self._origin()
        while len(self.connections) < inflight:
            self.connections.append(KeepAliveConnection(host, port))

        async def worker(connection: KeepAliveConnection) -> None:
            while time.perf_counter() < level.end:
                await self._one_command(level, connection)

        await asyncio.gather(*(worker(c) for c in self.connections[:inflight]))
        return level

    async def run_rate(self, rate: int) -> Level:
        """Open loop: a command every 1/rate seconds, sent whether or not earlier ones are
        back, each on an idle connection (a new one when none is idle)."""
        level = self._level(0, rate)
        host, port = self._origin()
        idle = list(self.connections)
        tasks: set[asyncio.Task[None]] = set()

        async def one(connection: KeepAliveConnection) -> None:
            try:
                await self._one_command(level, connection, idle.append)
            except BaseException:
                connection.close()
                raise

        started = time.perf_counter()
        for n in itertools.count():
            due = started + n / rate
            if due >= level.end:
                break
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            if idle:
                connection = idle.pop()
            else:
                connection = KeepAliveConnection(host, port)
                self.connections.append(connection)
            task = asyncio.create_task(one(connection))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
        return level

    async def _one_command(
        self,
        level: Level,
        connection: KeepAliveConnection,
        answered_on: Callable[[KeepAliveConnection], None] | None = None,
    ) -> None:
        """One START_SESSION, timed from the POST to its result. `answered_on`: given the
        connection once the POST is answered (it is free for another command then)."""
        path, headers = self._command_path, self._command_headers
        index, station, evse = self.picker.acquire()
        ref = f"r{next(self._refs)}"
        future: asyncio.Future[tuple[str, float]] = asyncio.get_running_loop().create_future()
        self.pending[ref] = future
        try:
            level.issued += 1
            sent = time.perf_counter()
            body = json.dumps(start_session_body(self.me.response_url(ref), station, evse))
            try:
                status, answer = await connection.post(path, body.encode(), headers)
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                level.errors[f"post {type(exc).__name__}"] += 1
                await asyncio.sleep(0.05)
                return
            answered = time.perf_counter()
            if answered_on is not None:
                answered_on(connection)
            sync_result = _sync_result(status, answer)
            if sync_result != "ACCEPTED":
                level.errors[f"sync {sync_result}"] += 1
                return
            try:
                result, arrived = await asyncio.wait_for(future, RESULT_WAIT)
            except TimeoutError:
                level.errors["no result"] += 1
                return
            level.record(sent, answered, arrived, result)
        finally:
            self.pending.pop(ref, None)
            self.picker.release(index)


def _sync_result(status: int, answer: bytes) -> str:
    if status != 200:
        return f"HTTP {status}"
    try:
        body = json.loads(answer)
    except ValueError:
        return "not JSON"
    if body.get("status_code") != 1000:
        return f"status_code {body.get('status_code')}"
    data = body.get("data") or {}
    return str(data.get("result"))


def _station_spec(text: str) -> tuple[str, int]:
    prefix, sep, count = text.rpartition(":")
    if not sep or not count.isdigit():
        raise argparse.ArgumentTypeError(f"expected PREFIX:COUNT, got {text!r}")
    return prefix, int(count)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    parser.add_argument("--target", required=True, help="base URL of the gateway or the floor")
    parser.add_argument("--token-a", help="token A from `chargegate party add`; none: the floor")
    parser.add_argument("--port", type=int, default=0, help="callback server port (0: free)")
    parser.add_argument(
        "--station", type=_station_spec, action="append", default=[], metavar="PREFIX:COUNT"
    )
    parser.add_argument("--connectors", type=int, default=2)
    parser.add_argument("--levels", type=int_list, default=[1], help="in-flight levels, e.g. 1,10")
    parser.add_argument(
        "--rates", type=int_list, default=[], help="then open-loop rates in commands/s, e.g. 200"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per level")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument(
        "--stepped",
        action="store_true",
        help="wait for a line on stdin before each level (the benchmark runs the floor's and "
        "chargegate's of a level back to back)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    port = args.port or free_port()
    run_async(LoadGenerator(args, port).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
