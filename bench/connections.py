"""Connections benchmark: K idle OCPP 1.6J stations against one `chargegate serve`.

Per K, a fresh gateway and database: resident memory before and after connecting K stations
(/proc/<pid>/status VmRSS), heartbeat round trips measured in the station processes
(`bench.idle_stations`, at most --per-process stations each), then a few START_SESSIONs from the
eMSP load generator with the K stations still connected.

`python -m bench.connections [--k 1000,5000,10000] [--db sqlite|postgres] [--heartbeat 10]`
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    DEFAULT_POSTGRES_URL,
    LineReader,
    Proc,
    ProcessSet,
    cpu_jiffies,
    cpu_seconds,
    exact_command,
    exit_on_sigterm,
    fmt,
    format_table,
    free_port,
    fresh_database,
    int_list,
    load_line,
    machine_lines,
    party_add,
    percentile,
    print_flush,
    python_module,
    raise_fd_limit,
    read_status_kib,
    start_gateway,
    stolen_percent,
    tail,
)
from bench.loadgen import RESULT_WAIT

# Listening socket, database, the eMSP's HTTP connections, log files: a margin, not a count.
FDS_BESIDES_STATIONS = 100


@dataclass
class KRun:
    k: int
    processes: int
    connect_seconds: float = math.nan
    booted: int = 0
    failed: int = 0
    lost: int = 0
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    hwm_kib: int = 0
    idle_cpu_percent: float = math.nan
    stolen_percent: float | None = None
    rtts_ms: list[float] = field(default_factory=list)
    heartbeat_errors: int = 0
    command: dict[str, Any] = field(default_factory=dict)

    @property
    def kib_per_connection(self) -> float:
        return (self.rss_after_kib - self.rss_before_kib) / self.k


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.connections", description=__doc__)
    parser.add_argument("--k", type=int_list, default=[1000, 5000, 10000])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--heartbeat", type=int, default=10, help="CHARGEGATE_HEARTBEAT_INTERVAL (seconds)"
    )
    parser.add_argument(
        "--window",
        type=float,
        default=None,
        help="seconds of heartbeats measured once all are connected (default: 2 intervals)",
    )
    parser.add_argument("--per-process", type=int, default=2500, help="stations per process")
    parser.add_argument("--connectors", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=100, help="boots at once per process")
    parser.add_argument(
        "--command-seconds", type=float, default=3.0, help="seconds of START_SESSIONs, 1 in flight"
    )
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--log-dir", type=Path, help="keep the processes' logs here")
    return parser


def run_k(procs: ProcessSet, k: int, args: argparse.Namespace, work_dir: Path) -> KRun:
    counts = [args.per_process] * (k // args.per_process)
    if k % args.per_process:
        counts.append(k % args.per_process)
    run = KRun(k, len(counts))
    with fresh_database(args.db, work_dir, args.postgres_url) as database_url:
        port = free_port()
        token_a = party_add(database_url, procs.log_dir)
        gateway = start_gateway(
            procs,
            f"gateway-k{k}",
            database_url,
            port,
            "warning",
            CHARGEGATE_HEARTBEAT_INTERVAL=str(args.heartbeat),
        )
        time.sleep(1.0)
        run.rss_before_kib = read_status_kib(gateway.pid)

        started = time.monotonic()
        stations: list[tuple[Proc, LineReader]] = []
        for index, count in enumerate(counts):
            proc = procs.start(
                f"stations-k{k}-{index}",
                python_module(
                    "bench.idle_stations",
                    "--url",
                    f"ws://127.0.0.1:{port}/ocpp",
                    "--prefix",
                    f"K{index}-",
                    "--count",
                    str(count),
                    "--connectors",
                    str(args.connectors),
                    "--concurrency",
                    str(args.concurrency),
                ),
                pipes=True,
            )
            stations.append((proc, LineReader(proc)))
        for _, reader in stations:
            _, booted, failed, _ = reader.readline(timeout=120 + k / 10).split()
            run.booted += int(booted)
            run.failed += int(failed)
        run.connect_seconds = time.monotonic() - started
        print_flush(
            f"  K={k}: {run.booted} booted, {run.failed} failed in {run.connect_seconds:.1f} s "
            f"over {len(stations)} processes"
        )

        for proc, reader in stations:
            proc.write_line("reset")
            reader.readline(timeout=30)
        cpu_before, jiffies_before = cpu_seconds(gateway.pid), cpu_jiffies()
        time.sleep(args.window)
        run.idle_cpu_percent = (cpu_seconds(gateway.pid) - cpu_before) / args.window * 100
        run.stolen_percent = stolen_percent(jiffies_before, cpu_jiffies())
        for proc, reader in stations:
            proc.write_line("report")
            report = json.loads(reader.readline(timeout=60))
            run.rtts_ms += report["rtts_ms"]
            run.heartbeat_errors += report["heartbeat_errors"]
            run.lost += report["lost"]
        run.rss_after_kib = read_status_kib(gateway.pid)
        print_flush(
            f"  K={k}: RSS {run.rss_before_kib / 1024:.0f} -> {run.rss_after_kib / 1024:.0f} MiB "
            f"({run.kib_per_connection:.1f} KiB/station), {len(run.rtts_ms)} heartbeats, "
            f"p99 {fmt(percentile(run.rtts_ms, 99))} ms, gateway CPU {run.idle_cpu_percent:.0f}%, "
            f"CPU stolen {fmt(run.stolen_percent)} %"
        )

        load = procs.start(
            f"emsp-k{k}",
            python_module(
                "bench.loadgen",
                "--target",
                f"http://127.0.0.1:{port}",
                f"--token-a={token_a}",  # a token may start with "-"
                *[arg for i, n in enumerate(counts) for arg in ("--station", f"K{i}-:{n}")],
                "--connectors",
                str(args.connectors),
                "--levels",
                "1",
                "--seconds",
                str(args.command_seconds),
                "--warmup",
                "0.5",
            ),
            pipes=True,
        )
        reader = LineReader(load)
        try:
            reader.readline(timeout=60)  # ready
            run.command = json.loads(reader.readline(args.command_seconds + RESULT_WAIT + 30))
        except (RuntimeError, TimeoutError, ValueError) as exc:
            # The heartbeat figures stand; say why there are no command figures at this K.
            print_flush(f"  K={k}: no command figures: {exc}; see {load.log_path}")
        else:
            print_flush(
                f"  K={k}: {run.command['completed']} START_SESSIONs, "
                f"p50 {fmt(run.command['p50'])} ms, p99 {fmt(run.command['p99'])} ms, "
                f"results {run.command['results']}, errors {run.command['errors']}"
            )
        run.hwm_kib = read_status_kib(gateway.pid, "VmHWM")
        procs.stop_all()
    return run


def report(runs: list[KRun], args: argparse.Namespace) -> str:
    headers = [
        "K",
        "station procs",
        "connect+boot s",
        "failed/lost",
        "RSS before MiB",
        "RSS after MiB",
        "KiB/station",
        "gw CPU % idle",
        "stolen %",
        "heartbeats",
        "hb p50",
        "hb p95",
        "hb p99",
        "hb max",
        "hb errors",
        "cmds",
        "cmd p50",
        "cmd p99",
    ]
    rows = [
        [
            str(r.k),
            str(r.processes),
            fmt(r.connect_seconds),
            f"{r.failed}/{r.lost}",
            fmt(r.rss_before_kib / 1024),
            fmt(r.rss_after_kib / 1024),
            fmt(r.kib_per_connection),
            fmt(r.idle_cpu_percent, 0),
            fmt(r.stolen_percent),
            str(len(r.rtts_ms)),
            fmt(percentile(r.rtts_ms, 50)),
            fmt(percentile(r.rtts_ms, 95)),
            fmt(percentile(r.rtts_ms, 99)),
            fmt(max(r.rtts_ms) if r.rtts_ms else None),
            str(r.heartbeat_errors),
            str(r.command.get("completed", 0)),
            fmt(r.command.get("p50")),
            fmt(r.command.get("p99")),
        ]
        for r in runs
    ]
    return "\n".join(
        [
            f"heartbeat interval {args.heartbeat} s, {args.window:g} s measured; latencies in ms "
            "(heartbeat: sent to CALLRESULT, in the station processes; cmd: START_SESSION POST "
            "to CommandResult, 1 in flight); KiB/station = (RSS after - RSS before) / K; "
            "gw CPU % idle: gateway CPU over the heartbeat window (100% = one core); stolen %: "
            "the machine's CPU time its hypervisor gave other guests meanwhile",
            format_table(headers, rows),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.window is None:
        args.window = 2.0 * args.heartbeat
    exit_on_sigterm()
    fd_limit = raise_fd_limit()
    print_flush("# chargegate connections benchmark")
    print_flush(f"command: {exact_command('bench.connections')}")
    for line in machine_lines():
        print_flush(line)
    print_flush(f"open-file limit per process: {fd_limit}")
    for k in args.k:
        if k + FDS_BESIDES_STATIONS > fd_limit:
            print_flush(
                f"warning: K={k} needs more sockets than the gateway may open ({fd_limit}): "
                "expect refused stations and no command figures at that K"
            )
    print_flush(
        f"database: {args.db}; {args.connectors} connectors per station; "
        f"at most {args.per_process} stations per process"
    )
    runs: list[KRun] = []
    with tempfile.TemporaryDirectory(prefix="cg-bench-") as tmp:
        log_dir = args.log_dir or Path(tmp)
        log_dir.mkdir(parents=True, exist_ok=True)
        procs = ProcessSet(log_dir)
        try:
            for k in args.k:
                runs.append(run_k(procs, k, args, Path(tmp)))
        except BaseException:
            for proc in procs.procs:
                print(f"--- {proc.name} log tail ---\n{tail(proc.log_path)}", file=sys.stderr)
            raise
        finally:
            procs.stop_all()
    print_flush(f"\n{load_line('at end')}")
    print_flush(report(runs, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
