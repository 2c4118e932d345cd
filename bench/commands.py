"""End-to-end command benchmark: chargegate against the floor, same machine, same run.

Per system (the floor first, then `chargegate serve`), in separate processes: the server,
simulated OCPP 1.6J stations answering RemoteStartTransaction at once, and the eMSP load
generator (`bench.loadgen`), which keeps N START_SESSION commands in flight and times each from
the POST to the CommandResult at its `response_url`.

`python -m bench.commands [--db sqlite|postgres] [--inflight 1,10,50,200] [--seconds 10]
[--stations 200]`
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.common import (
    DEFAULT_POSTGRES_URL,
    LineReader,
    Proc,
    ProcessSet,
    chargegate_cli,
    cpu_jiffies,
    cpu_seconds,
    cpu_used_since,
    exact_command,
    exit_on_sigterm,
    fmt,
    format_table,
    free_port,
    fresh_database,
    int_list,
    load_line,
    machine_lines,
    named_cpu_seconds,
    party_add,
    print_flush,
    python_module,
    raise_fd_limit,
    read_status_kib,
    start_gateway,
    stolen_percent,
    tail,
    wait_http_ok,
    wait_log_count,
)
from bench.loadgen import RESULT_WAIT
from bench.prefill import prefill

PREFIX = "SIM-"


@dataclass
class SystemRun:
    """A system's figures: per level (in flight, or open-loop cmd/s in `rates`) its summary,
    and in `tries` every run of it, in the order measured."""

    name: str
    levels: dict[int, dict[str, Any]]
    server_rss_kib: int | None = None
    rates: dict[int, dict[str, Any]] = field(default_factory=dict)  # open loop, by cmd/s
    tries: dict[tuple[bool, int], list[dict[str, Any]]] = field(default_factory=dict)

    def record(self, closed_loop: bool, size: int, summary: dict[str, Any]) -> None:
        runs = self.tries.setdefault((closed_loop, size), [])
        runs.append(summary)
        into = self.levels if closed_loop else self.rates
        into[size] = median_summary(runs)


def median_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the runs (the lower middle one for an even count): a single
    run's p99 can be an outlier, and the run with the median rate need not have the median p99
    (docs/performance.md#repeats). What is not a number is the first run's."""
    summary = dict(runs[0])
    for key, value in summary.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            figures = sorted(run[key] for run in runs if isinstance(run.get(key), int | float))
            summary[key] = figures[(len(figures) - 1) // 2]
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.commands", description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--inflight", type=int_list, default=[1, 10, 50, 200])
    parser.add_argument(
        "--rates",
        type=int_list,
        default=[],
        help="then open-loop levels: commands sent at this many per second whatever comes "
        "back, e.g. 200,500 (the delay added at a given load, not the throughput)",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per level")
    parser.add_argument(
        "--warmup", type=float, default=None, help="unmeasured seconds before each level"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure each level this many times, the floor and chargegate back to back each "
        "time; the tables give each figure's median and every run's rate is listed",
    )
    parser.add_argument("--stations", type=int, default=200)
    parser.add_argument(
        "--prefill",
        type=int,
        default=0,
        help="this many resolved commands (with their outbox rows and OCPP frames) in the "
        "database before the gateway starts, spread over 30 days, as after months of service "
        "(a fresh database fits in any cache; one of 1,000,000 commands is about 1.2 GB on "
        "SQLite)",
    )
    parser.add_argument("--connectors", type=int, default=2)
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help="an existing database to connect to for CREATE/DROP DATABASE",
    )
    parser.add_argument(
        "--gateway-log-level",
        default="warning",
        help="chargegate serve --log-level (info adds uvicorn's access log; the floor has none)",
    )
    parser.add_argument(
        "--sim-cli",
        action="store_true",
        help="run stations with `chargegate sim` as is (auto transactions on) instead of "
        "bench.stations (the same simulator with auto transactions off)",
    )
    parser.add_argument("--only", choices=["floor", "chargegate"], help="run one system only")
    parser.add_argument("--log-dir", type=Path, help="keep the processes' logs here")
    return parser


def start_stations(procs: ProcessSet, name: str, port: int, args: argparse.Namespace) -> Proc:
    url = f"ws://127.0.0.1:{port}/ocpp"
    if args.sim_cli:
        argv = chargegate_cli(
            "sim",
            "--url",
            url,
            "--stations",
            str(args.stations),
            "--connectors",
            str(args.connectors),
            "--prefix",
            PREFIX,
            "--answer",
            "RemoteStartTransaction=accept",
        )
    else:
        argv = python_module(
            "bench.stations",
            "--url",
            url,
            "--stations",
            str(args.stations),
            "--connectors",
            str(args.connectors),
            "--prefix",
            PREFIX,
        )
    proc = procs.start(name, argv)
    wait_log_count(proc, "booted,", args.stations, timeout=60 + args.stations / 5)
    return proc


def loadgen_args(port: int, args: argparse.Namespace) -> list[str]:
    """The load generator's arguments for this run."""
    argv = [
        "--target",
        f"http://127.0.0.1:{port}",
        "--station",
        f"{PREFIX}:{args.stations}",
        "--connectors",
        str(args.connectors),
        "--levels",
        ",".join(str(n) for n in args.inflight for _ in range(args.repeat)),
        "--stepped",
        "--seconds",
        str(args.seconds),
        "--warmup",
        str(args.warmup),
    ]
    # Only when asked for: an empty list is not an argument the parser takes.
    if args.rates:
        argv += ["--rates", ",".join(str(r) for r in args.rates for _ in range(args.repeat))]
    return argv


class Load:
    """A system's load generator, run one level at a time (`--stepped`)."""

    def __init__(self, procs: ProcessSet, system: System, args: argparse.Namespace) -> None:
        argv = python_module("bench.loadgen", *loadgen_args(system.port, args))
        if system.token_a:
            # One argument: a token may start with "-", which argparse would take for an option.
            argv += [f"--token-a={system.token_a}"]
        self.name = system.emsp_name
        self.proc = procs.start(self.name, argv, pipes=True)
        self.reader = LineReader(self.proc)
        if not json.loads(self.reader.readline(timeout=60)).get("ready"):
            raise RuntimeError(f"{self.name} did not get ready")
        self.watched = {
            "cpu_ms": system.server,
            "stations_cpu_ms": system.stations,
            "emsp_cpu_ms": self.proc,
        }
        # The local PostgreSQL server's processes: on this machine they take the same cores.
        self.database = system.local_postgres
        self.wait = args.warmup + args.seconds + RESULT_WAIT + 30

    def next_level(self, label: str) -> dict[str, Any]:
        """Run the next level; its summary with each process's CPU per command (CPU time from
        the level's start to its end, warm-up and waiting for results included, over the
        commands issued) and the share of the machine's CPU time stolen meanwhile."""
        cpu_before = {key: cpu_seconds(p.pid) for key, p in self.watched.items()}
        database_before = named_cpu_seconds("postgres") if self.database else {}
        jiffies_before = cpu_jiffies()
        self.proc.write_line("go")
        summary: dict[str, Any] = json.loads(self.reader.readline(self.wait))
        issued = summary["issued"]
        for key, p in self.watched.items():
            used = (cpu_seconds(p.pid) - cpu_before[key]) * 1000
            summary[key] = used / issued if issued else None
        if self.database:
            used = cpu_used_since(database_before, named_cpu_seconds("postgres")) * 1000
            summary["db_cpu_ms"] = used / issued if issued else None
        summary["stolen_pct"] = stolen_percent(jiffies_before, cpu_jiffies())
        database = f", PostgreSQL {fmt(summary['db_cpu_ms'], 2)}" if self.database else ""
        print_flush(
            f"  {self.name}: {label}: {summary['rate']:8.1f} cmd/s, "
            f"p50 {fmt(summary['p50'])} ms, p99 {fmt(summary['p99'])} ms, "
            f"answer p50 {fmt(summary['sync_p50'])} ms, p99 {fmt(summary['sync_p99'])} ms, "
            f"CPU ms/cmd: server {fmt(summary['cpu_ms'], 2)}, "
            f"stations {fmt(summary['stations_cpu_ms'], 2)}, "
            f"eMSP {fmt(summary['emsp_cpu_ms'], 2)}{database}; "
            f"CPU stolen {fmt(summary['stolen_pct'])} %; "
            f"results {summary['results']}, errors {summary['errors']}"
        )
        return summary


@dataclass
class System:
    """A server under test, up with its stations: the load generator is pointed at it."""

    name: str
    emsp_name: str  # the load generator's name in the output and the logs
    port: int
    token_a: str | None
    server: Proc
    stations: Proc
    local_postgres: bool = False  # its database server runs on this machine
    run: SystemRun = field(init=False)

    def __post_init__(self) -> None:
        self.run = SystemRun(self.name, {})


@contextmanager
def floor_system(procs: ProcessSet, args: argparse.Namespace) -> Iterator[System]:
    port = free_port()
    print_flush(f"floor: bench.floor on :{port}")
    server = procs.start("floor", python_module("bench.floor", "--port", str(port)))
    wait_http_ok(f"http://127.0.0.1:{port}/healthz", server)
    stations = start_stations(procs, "floor-stations", port, args)
    yield System("floor", "floor-emsp", port, None, server, stations)
    procs.stop(stations)
    procs.stop(server)


@contextmanager
def chargegate_system(
    procs: ProcessSet, args: argparse.Namespace, work_dir: Path
) -> Iterator[System]:
    with fresh_database(args.db, work_dir, args.postgres_url) as database_url:
        port = free_port()
        print_flush(f"chargegate: chargegate serve on :{port}, database {database_url}")
        token_a = party_add(database_url, procs.log_dir)
        if args.prefill:
            took = prefill(database_url, args.prefill, args.stations, PREFIX)
            print_flush(f"prefilled {args.prefill:,} commands in {took:.0f} s")
        server = start_gateway(procs, "gateway", database_url, port, args.gateway_log_level)
        stations = start_stations(procs, "gateway-stations", port, args)
        local = args.db == "postgres" and _is_local(args.postgres_url)
        yield System("chargegate", "gateway-emsp", port, token_a, server, stations, local)
        procs.stop(stations)
        procs.stop(server)


def _is_local(url: str) -> bool:
    return urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


def levels_of(args: argparse.Namespace, width: int = 0) -> list[tuple[bool, int, str]]:
    """The run's levels in the order measured, as (closed loop?, size, label, its number
    right-aligned in `width`): the in-flight ones, then the open-loop rates."""
    steps = [(True, n, f"{n:>{width}} in flight") for n in args.inflight]
    return steps + [(False, r, f"{r:>{width}} cmd/s sent") for r in args.rates]


def run_levels(procs: ProcessSet, systems: list[System], args: argparse.Namespace) -> None:
    """Each level on every system in turn, back to back, before the next level: on a shared
    virtual machine the CPU time other guests take comes and goes over minutes, so the floor and
    chargegate of a level are measured as close together as they can be
    (docs/performance.md#levels-back-to-back)."""
    loads = [Load(procs, system, args) for system in systems]
    for closed_loop, size, label in levels_of(args, width=4):
        for _ in range(args.repeat):
            for system, load in zip(systems, loads, strict=True):
                system.run.record(closed_loop, size, load.next_level(label))
    for system, load in zip(systems, loads, strict=True):
        procs.stop(load.proc)
        system.run.server_rss_kib = _rss(system.server)


def _rss(proc: Proc) -> int | None:
    try:
        return read_status_kib(proc.pid, "VmHWM")
    except (OSError, KeyError):
        return None


def _diff(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or math.isnan(a) or math.isnan(b):
        return None
    return a - b


# The command targets for one node on a 2-core machine (docs/performance.md#targets).
TARGET_RATE_SQLITE = 1000.0
TARGET_RATIO = 0.5
TARGET_P99_LEVEL = 50
TARGET_P99_ABOVE_FLOOR_MS = 5.0


def _verdict(met: bool) -> str:
    return "met" if met else "not met"


# Each process's CPU time per command, in a level's summary: all of them share the machine.
_CPU_KEYS = ("cpu_ms", "stations_cpu_ms", "emsp_cpu_ms", "db_cpu_ms")


def would_take(level: dict[str, Any], rate: float, cores: int) -> str:
    """What carrying `rate` cmd/s would cost in CPU at the CPU per command `level` measured:
    the gateway is one process (one core at most) and every process of the run, the database
    server's included when it is local, shares the machine's `cores`."""
    if level.get("cpu_ms") is None:
        return ""
    everything = sum(level.get(key) or 0.0 for key in _CPU_KEYS)
    return (
        f"at this run's CPU per command, {rate * level['cpu_ms'] / 1000:.2f} cores for the "
        f"gateway's one process and {rate * everything / 1000:.2f} for all the run's processes, "
        f"on a machine of {cores}"
    )


def targets(floor: SystemRun, gateway: SystemRun, db: str, cores: int | None = None) -> list[str]:
    """The command targets against this run's figures, one line each, and for a target
    not met what meeting it would take in this run's terms."""
    cores = cores or os.cpu_count() or 1
    lines = ["targets, this run:"]
    rates = {n: level["rate"] for n, level in gateway.levels.items() if level.get("rate")}
    if db == "sqlite" and rates:
        best = max(rates, key=lambda n: rates[n])
        lines.append(
            f"  >= {TARGET_RATE_SQLITE:,.0f} cmd/s on SQLite: {rates[best]:,.0f} at {best} in "
            f"flight, {_verdict(rates[best] >= TARGET_RATE_SQLITE)}"
        )
    ratios = {
        n: rate / floor.levels[n]["rate"]
        for n, rate in rates.items()
        if floor.levels.get(n, {}).get("rate")
    }
    if ratios:
        listed = ", ".join(f"{ratios[n]:.2f} at {n}" for n in sorted(ratios))
        met = [str(n) for n in sorted(ratios) if ratios[n] >= TARGET_RATIO]
        lines.append(
            f"  throughput >= {TARGET_RATIO:.0%} of the floor: {listed}; "
            + (f"met at {', '.join(met)} in flight" if met else "not met")
        )
        for n in sorted(ratios):
            needed = TARGET_RATIO * floor.levels[n]["rate"]
            cost = would_take(gateway.levels[n], needed, cores)
            if ratios[n] < TARGET_RATIO and cost:
                lines.append(f"    {n} in flight: {needed:,.0f} cmd/s, {cost}")
    lines += _p99_target(floor, gateway, cores)
    return lines if len(lines) > 1 else []


def _p99_target(floor: SystemRun, gateway: SystemRun, cores: int) -> list[str]:
    f = floor.levels.get(TARGET_P99_LEVEL, {})
    g = gateway.levels.get(TARGET_P99_LEVEL, {})
    above = _diff(g.get("p99"), f.get("p99"))
    if above is None:
        return []
    met = above <= TARGET_P99_ABOVE_FLOOR_MS
    lines = [
        f"  p99 at {TARGET_P99_LEVEL} in flight <= the floor's + "
        f"{TARGET_P99_ABOVE_FLOOR_MS:g} ms: {above:+.1f} ms, {_verdict(met)}"
    ]
    if met or not g.get("rate"):
        return lines
    # Closed loop: a command waits behind the others in flight (Little's law), so latency
    # scales with 1/throughput and the p99 is reached by carrying more, not by a shorter path.
    allowed = f["p99"] + TARGET_P99_ABOVE_FLOOR_MS
    needed = g["rate"] * g["p99"] / allowed
    lines.append(
        f"    closed loop: {TARGET_P99_LEVEL} in flight / {g['rate']:,.0f} cmd/s = "
        f"{1000 * TARGET_P99_LEVEL / g['rate']:.1f} ms on average (p50 {fmt(g.get('p50'))}); "
        f"a p99 of {allowed:.1f} ms needs about {needed:,.0f} cmd/s, "
        f"{needed / f['rate']:.0%} of the floor's: {would_take(g, needed, cores)}"
    )
    return lines


def _summaries(
    floor: SystemRun | None, gateway: SystemRun | None, table: str, key: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The floor's and chargegate's summaries of one level (`table`: "levels" or "rates"); {}
    for a system not run."""
    f = getattr(floor, table).get(key, {}) if floor else {}
    g = getattr(gateway, table).get(key, {}) if gateway else {}
    return f, g


def _rate_row(rate: int, floor: SystemRun | None, gateway: SystemRun | None) -> list[str]:
    f, g = _summaries(floor, gateway, "rates", rate)
    return [
        str(rate),
        fmt(f.get("rate")),
        fmt(g.get("rate")),
        fmt(f.get("p50")),
        fmt(f.get("p99")),
        fmt(g.get("p50")),
        fmt(g.get("p99")),
        fmt(_diff(g.get("p50"), f.get("p50"))),
        fmt(_diff(g.get("p99"), f.get("p99"))),
        _stolen(f, g),
    ]


def _stolen(f: dict[str, Any], g: dict[str, Any]) -> str:
    """The CPU share stolen during the floor's level and chargegate's: "floor/cg"."""
    return f"{fmt(f.get('stolen_pct'))}/{fmt(g.get('stolen_pct'))}"


def _pairs(
    floor: SystemRun | None, gateway: SystemRun | None, closed_loop: bool, size: int
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Every run of a level as (floor, chargegate), measured back to back; {} where a system
    was not run."""
    f = floor.tries.get((closed_loop, size), []) if floor else []
    g = gateway.tries.get((closed_loop, size), []) if gateway else []
    return list(zip_longest(f, g, fillvalue={}))


def _spread(
    floor: SystemRun | None,
    gateway: SystemRun | None,
    steps: list[tuple[bool, int, str]],
    repeat: int,
) -> list[str]:
    lines = [
        f"each level measured {repeat} times, the floor and chargegate back to back each time; "
        "the tables give each figure's median; every run's cmd/s, in the order measured:"
    ]
    for closed_loop, size, where in steps:
        pairs = _pairs(floor, gateway, closed_loop, size)
        by_system = (("floor", [f for f, _ in pairs]), ("chargegate", [g for _, g in pairs]))
        parts = [
            f"{name} " + " / ".join(fmt(run.get("rate")) for run in runs)
            for name, runs in by_system
            if any(runs)
        ]
        ratios = [g["rate"] / f["rate"] for f, g in pairs if f.get("rate") and g.get("rate")]
        if ratios:
            parts.append("cg/floor " + " / ".join(f"{ratio:.2f}" for ratio in ratios))
        lines.append(f"  {where}: " + "; ".join(parts))
    return lines


def _not_all_accepted(where: str, f: dict[str, Any], g: dict[str, Any]) -> list[str]:
    return [
        f"  {label} at {where}: results {level['results']}, errors {level['errors']}"
        for label, level in (("floor", f), ("chargegate", g))
        if level and (level.get("errors") or set(level.get("results", {})) - {"ACCEPTED"})
    ]


def report(floor: SystemRun | None, gateway: SystemRun | None, args: argparse.Namespace) -> str:
    headers = [
        "in flight",
        "floor cmd/s",
        "chargegate cmd/s",
        "ratio cg/floor",
        "floor p50",
        "floor p95",
        "floor p99",
        "cg p50",
        "cg p95",
        "cg p99",
        "p99 cg-floor (ms)",
        "CPU ms/cmd floor",
        "CPU ms/cmd cg",
        "stolen % floor/cg",
    ]
    rows = []
    notes = []
    for inflight in args.inflight:
        f, g = _summaries(floor, gateway, "levels", inflight)
        f_rate, g_rate = f.get("rate"), g.get("rate")
        ratio = g_rate / f_rate if f_rate and g_rate is not None else None
        rows.append(
            [
                str(inflight),
                fmt(f_rate),
                fmt(g_rate),
                fmt(ratio, 2),
                fmt(f.get("p50")),
                fmt(f.get("p95")),
                fmt(f.get("p99")),
                fmt(g.get("p50")),
                fmt(g.get("p95")),
                fmt(g.get("p99")),
                fmt(_diff(g.get("p99"), f.get("p99"))),
                fmt(f.get("cpu_ms"), 2),
                fmt(g.get("cpu_ms"), 2),
                _stolen(f, g),
            ]
        )
    lines = [
        "latencies in ms, from the START_SESSION POST being sent to the CommandResult "
        "arriving at response_url; CPU ms/cmd: the server process's CPU time per command issued; "
        "stolen %: the machine's CPU time its hypervisor gave other guests during the level "
        "(a level with much stolen is not comparable)",
        format_table(headers, rows),
    ]
    if args.rates:
        lines += [
            "open loop: commands sent at a fixed rate, whatever comes back; latency as above",
            format_table(
                [
                    "sent cmd/s",
                    "floor done cmd/s",
                    "cg done cmd/s",
                    "floor p50",
                    "floor p99",
                    "cg p50",
                    "cg p99",
                    "p50 cg-floor (ms)",
                    "p99 cg-floor (ms)",
                    "stolen % floor/cg",
                ],
                [_rate_row(rate, floor, gateway) for rate in args.rates],
            ),
        ]
    steps = levels_of(args)
    for closed_loop, size, where in steps:
        for f, g in _pairs(floor, gateway, closed_loop, size):
            notes += _not_all_accepted(where, f, g)
    if args.repeat > 1:
        lines += _spread(floor, gateway, steps, args.repeat)
    if notes:
        lines += ["not everything was ACCEPTED:", *notes]
    peaks = [
        f"{run.name} {run.server_rss_kib / 1024:.0f} MiB"
        for run in (floor, gateway)
        if run is not None and run.server_rss_kib is not None
    ]
    if peaks:
        lines.append("server peak RSS (VmHWM): " + ", ".join(peaks))
    if floor is not None and gateway is not None:
        lines += targets(floor, gateway, args.db)
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if args.warmup is None:
        args.warmup = max(0.5, min(2.0, args.seconds * 0.2))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    raise_fd_limit()
    print_flush("# chargegate end-to-end commands benchmark")
    print_flush(f"command: {exact_command('bench.commands')}")
    for line in machine_lines():
        print_flush(line)
    stations_kind = "chargegate sim (auto transactions on)" if args.sim_cli else "bench.stations"
    print_flush(
        f"database: {args.db}; {args.stations} stations x {args.connectors} connectors "
        f"({stations_kind}); {args.seconds:g} s measured per level after {args.warmup:g} s warm-up"
    )
    with tempfile.TemporaryDirectory(prefix="cg-bench-") as tmp:
        log_dir = args.log_dir or Path(tmp)
        log_dir.mkdir(parents=True, exist_ok=True)
        procs = ProcessSet(log_dir)
        floor: SystemRun | None = None
        gateway: SystemRun | None = None
        started = time.monotonic()
        try:
            with ExitStack() as up:
                systems = []
                if args.only in (None, "floor"):
                    systems.append(up.enter_context(floor_system(procs, args)))
                if args.only in (None, "chargegate"):
                    systems.append(up.enter_context(chargegate_system(procs, args, Path(tmp))))
                run_levels(procs, systems, args)
            runs = {system.name: system.run for system in systems}
            floor, gateway = runs.get("floor"), runs.get("chargegate")
        except BaseException:
            for proc in procs.procs:
                print(f"--- {proc.name} log tail ---\n{tail(proc.log_path)}", file=sys.stderr)
            raise
        finally:
            procs.stop_all()
        print_flush(f"\n(ran {time.monotonic() - started:.0f} s; {load_line('at end')})")
        print_flush(report(floor, gateway, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
