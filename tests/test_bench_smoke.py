"""The benchmarks at a tiny size: they run, exit 0 and print their tables with numbers.

Never asserts on speed. Each benchmark runs as a subprocess in its own session with a tag in its
environment, which every process it starts inherits; whatever still carries the tag afterwards,
even after a failure or a timeout, is killed (and fails the test).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from bench.common import TAG_VARIABLE, cpu_jiffies, stolen_percent, tagged_pids

ROOT = Path(__file__).resolve().parents[1]


def _kill_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _leftovers(tag: str, wait: float = 5.0) -> list[int]:
    """Processes of this run still alive after `wait` seconds; they are killed."""
    deadline = time.monotonic() + wait
    while (pids := tagged_pids(tag)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


def run_bench(module: str, *args: str, timeout: float) -> str:
    tag = uuid.uuid4().hex
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**os.environ, TAG_VARIABLE: tag},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = ""
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid, signal.SIGTERM)  # the bench stops its children on SIGTERM
        try:
            output, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
        pytest.fail(f"{module} did not finish within {timeout:.0f}s:\n{output}")
    finally:
        if proc.poll() is None:
            _kill_group(proc.pid, signal.SIGKILL)
            proc.wait()
        leftovers = _leftovers(tag)
    assert proc.returncode == 0, f"{module} exited with {proc.returncode}:\n{output}"
    assert not leftovers, f"{module} left processes behind: {leftovers}\n{output}"
    return output


def table_rows(output: str) -> list[list[str]]:
    """Data rows of the markdown table(s) in the output."""
    rows = []
    for line in output.splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[0][:1].isdigit():
            rows.append(cells)
    return rows


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_commands_benchmark_prints_floor_and_chargegate_per_level() -> None:
    output = run_bench(
        "bench.commands",
        "--inflight",
        "1,5",
        "--seconds",
        "1",
        "--warmup",
        "0.5",
        "--stations",
        "10",
        "--rates",
        "20",
        "--repeat",
        "2",
        timeout=60,
    )
    assert "command: python -m bench.commands --inflight 1,5" in output
    # Each level twice: the table has it once, the spread lists both runs of each system.
    spread = [line for line in output.splitlines() if line.startswith("  5 in flight: floor ")]
    assert len(spread) == 1 and spread[0].count(" / ") == 3, output
    assert "machine: " in output and "python: " in output
    rows = table_rows(output)
    # The in-flight levels, then the open-loop one (commands sent at 20 a second).
    assert [row[0] for row in rows] == ["1", "5", "20"], output
    for row in rows:
        # "a/b" cells: the floor's figure and chargegate's (the CPU time stolen by the host).
        assert all(is_number(part) for cell in row for part in cell.split("/")), row
        floor_rate, chargegate_rate = float(row[1]), float(row[2])
        assert floor_rate > 0 and chargegate_rate > 0, row
    assert "open loop: commands sent at a fixed rate" in output
    assert "not everything was ACCEPTED" not in output, output
    assert "stolen % floor/cg" in output and "CPU stolen" in output


def test_the_cpu_time_stolen_by_the_host_is_a_share_of_the_time_passed() -> None:
    assert stolen_percent((10, 1_000), (35, 1_100)) == 25.0
    assert stolen_percent((10, 1_000), (10, 1_000)) is None  # no time passed: nothing to say
    stolen, total = cpu_jiffies()
    assert 0 <= stolen <= total


def test_connections_benchmark_prints_memory_heartbeats_and_commands() -> None:
    output = run_bench(
        "bench.connections",
        "--k",
        "20",
        "--heartbeat",
        "1",
        "--window",
        "2",
        "--command-seconds",
        "1",
        timeout=40,
    )
    assert "command: python -m bench.connections --k 20" in output
    [row] = table_rows(output)
    assert row[0] == "20"
    assert row[3] == "0/0", row  # no station failed to boot or lost its connection
    numeric = [cell for i, cell in enumerate(row) if i != 3]
    assert all(is_number(cell) for cell in numeric), row
    assert int(row[9]) > 0, row  # heartbeats were timed
    assert int(row[15]) > 0, row  # commands were timed
    assert "stolen %" in output


def test_the_commands_report_says_where_the_targets_stand() -> None:
    from bench.commands import SystemRun, targets

    floor = SystemRun("floor", {1: {"rate": 800.0, "p99": 1.6}, 50: {"rate": 2000.0, "p99": 40.0}})
    gateway = SystemRun(
        "chargegate", {1: {"rate": 300.0, "p99": 7.0}, 50: {"rate": 1050.0, "p99": 44.5}}
    )
    assert targets(floor, gateway, "sqlite", cores=2) == [
        "targets, this run:",
        "  >= 1,000 cmd/s on SQLite: 1,050 at 50 in flight, met",
        "  throughput >= 50% of the floor: 0.38 at 1, 0.53 at 50; met at 50 in flight",
        "  p99 at 50 in flight <= the floor's + 5 ms: +4.5 ms, met",
    ]
    # With CPU figures, a target not met says what meeting it would take on this machine.
    cpu = {"cpu_ms": 1.0, "stations_cpu_ms": 0.3, "emsp_cpu_ms": 0.2, "db_cpu_ms": 0.5}
    slow = SystemRun("chargegate", {50: {"rate": 900.0, "p50": 52.0, "p99": 90.0, **cpu}})
    assert targets(floor, slow, "postgres", cores=2) == [
        "targets, this run:",
        "  throughput >= 50% of the floor: 0.45 at 50; not met",
        # 1,000 cmd/s x 1.0 ms in the gateway; x (1.0 + 0.3 + 0.2 + 0.5) ms in all.
        "    50 in flight: 1,000 cmd/s, at this run's CPU per command, 1.00 cores for the "
        "gateway's one process and 2.00 for all the run's processes, on a machine of 2",
        "  p99 at 50 in flight <= the floor's + 5 ms: +50.0 ms, not met",
        # 900 cmd/s x 90 ms / (40 + 5) ms = 1,800 cmd/s, 90 % of the floor's 2,000.
        "    closed loop: 50 in flight / 900 cmd/s = 55.6 ms on average (p50 52.0); a p99 of "
        "45.0 ms needs about 1,800 cmd/s, 90% of the floor's: at this run's CPU per command, "
        "1.80 cores for the gateway's one process and 3.60 for all the run's processes, on a "
        "machine of 2",
    ]


def _level(rate: float, p99: float, errors: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "rate": rate,
        "p50": p99 / 2,
        "p99": p99,
        "cpu_ms": 0.5,
        "results": {"ACCEPTED": int(rate)},
        "errors": errors or {},
    }


def test_a_level_measured_several_times_reports_each_figures_median_and_every_run() -> None:
    from bench import commands

    args = commands.parse_args(["--inflight", "50", "--repeat", "3"])
    floor, gateway = commands.SystemRun("floor", {}), commands.SystemRun("chargegate", {})
    # Back-to-back pairs, as run_levels measures them. The floor's median-rate run has an
    # outlying p99; one of chargegate's runs had an error.
    runs = [((2400.0, 125.0), (1200.0, 70.0)), ((2000.0, 40.0), (1250.0, 75.0))]
    runs.append(((2600.0, 45.0), (1300.0, 80.0)))
    for (f_rate, f_p99), (g_rate, g_p99) in runs:
        floor.record(True, 50, _level(f_rate, f_p99))
        errors = {"ReadTimeout": 1} if g_rate == 1300.0 else None
        gateway.record(True, 50, _level(g_rate, g_p99, errors))
    # Each figure's own median: the floor's p99 is 45, not the median-rate run's 125.
    assert floor.levels[50]["rate"] == 2400.0 and floor.levels[50]["p99"] == 45.0
    assert gateway.levels[50]["rate"] == 1250.0 and gateway.levels[50]["p99"] == 75.0
    output = commands.report(floor, gateway, args)
    [row] = table_rows(output)
    assert row[1:4] == ["2400.0", "1250.0", "0.52"] and row[6] == "45.0" and row[10] == "30.0"
    assert "each level measured 3 times" in output
    assert (
        "  50 in flight: floor 2400.0 / 2000.0 / 2600.0; chargegate 1200.0 / 1250.0 / 1300.0; "
        "cg/floor 0.50 / 0.62 / 0.50" in output.splitlines()
    ), output
    # A run whose figures are not the medians still has its errors reported.
    assert "chargegate at 50 in flight: results {'ACCEPTED': 1300}, errors {'ReadTimeout': 1}" in (
        output
    ), output


async def test_prefill_writes_history_older_than_anything_the_gateway_writes(
    database_url: str, tmp_path: Path
) -> None:
    from bench.common import party_add
    from bench.prefill import prefill
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from chargegate.domain.ids import new_id

    await asyncio.to_thread(party_add, database_url, tmp_path)  # migrates, adds the one party
    await asyncio.to_thread(prefill, database_url, 1000, 10, "SIM-")
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:

            async def one(sql: str) -> Any:
                return (await conn.execute(text(sql))).scalar_one()

            counts = [
                await one(f"SELECT count(*) FROM {table}")
                for table in ("commands", "outbox", "ocpp_messages")
            ]
            assert counts == [1000, 1000, 2000]
            ordered = await conn.execute(text("SELECT id FROM commands ORDER BY created_at, id"))
            ids = [row[0] for row in ordered]
            assert ids == sorted(ids) and len(set(ids)) == 1000 and ids[-1] < new_id()
            stations = await conn.execute(text("SELECT DISTINCT station_id FROM commands"))
            assert {row[0] for row in stations} <= {f"SIM-{i:05d}" for i in range(10)}
            # Every outbox row and frame belongs to a prefilled command.
            assert not await one(
                "SELECT count(*) FROM ocpp_messages"
                " WHERE unique_id NOT IN (SELECT id FROM commands)"
            )
            assert not await one(
                "SELECT count(*) FROM outbox WHERE command_id NOT IN (SELECT id FROM commands)"
            )
    finally:
        await engine.dispose()


def test_the_database_servers_cpu_is_counted_for_processes_alive_at_either_reading() -> None:
    from bench.common import cpu_used_since, named_cpu_seconds

    # pid 1 used 2 s, pid 3 started meanwhile (all of its 0.5 s), pid 2 ended (not counted).
    assert cpu_used_since({1: 10.0, 2: 4.0}, {1: 12.0, 3: 0.5}) == 2.5
    mine = named_cpu_seconds(Path(f"/proc/{os.getpid()}/comm").read_text().strip())
    assert os.getpid() in mine and mine[os.getpid()] > 0


@pytest.mark.parametrize("extra", [[], ["--rates", "200,500"]])
def test_commands_benchmark_gives_the_load_generator_arguments_it_takes(
    extra: list[str],
) -> None:
    # A run without open-loop levels must not hand the load generator an empty --rates, which
    # its parser refuses (the documented command would fail before its first level).
    from bench import commands, loadgen

    args = commands.parse_args(["--inflight", "1,50", *extra])
    parsed = loadgen.build_parser().parse_args(commands.loadgen_args(8080, args))
    assert parsed.levels == [1, 50]
    assert parsed.rates == ([200, 500] if extra else [])
    # Repeated levels: the load generator runs each one again, a line on stdin each time.
    args = commands.parse_args(["--inflight", "1,50", "--repeat", "2", *extra])
    parsed = loadgen.build_parser().parse_args(commands.loadgen_args(8080, args))
    assert parsed.levels == [1, 1, 50, 50]
    assert parsed.rates == ([200, 200, 500, 500] if extra else [])
    assert parsed.warmup == args.warmup and parsed.seconds == args.seconds
    assert parsed.stepped  # each level when the benchmark says (commands.run_levels)


def test_a_level_times_the_commands_sent_in_its_window_and_counts_those_done_in_it() -> None:
    from bench.loadgen import Level

    level = Level(inflight=200, start=10.0, end=20.0)
    level.record(sent=8.0, answered=11.0, arrived=11.5, result="ACCEPTED")  # sent in warm-up
    level.record(sent=12.0, answered=12.1, arrived=12.2, result="ACCEPTED")
    level.record(sent=19.9, answered=20.1, arrived=20.4, result="ACCEPTED")  # back after the end
    summary = level.summary()
    assert summary["completed"] == 2 and summary["rate"] == 0.2
    assert sorted(level.latencies) == pytest.approx([0.2, 0.5])
    assert sorted(level.sync) == pytest.approx([0.1, 0.2])
    assert summary["results"] == {"ACCEPTED": 2}


def test_a_stepped_load_generator_whose_benchmark_is_gone_runs_no_level() -> None:
    """Stepped, the load generator runs a level per line on stdin; stdin's end (the benchmark
    killed) ends it instead of sending load at servers being stopped."""
    argv = ["--target", "http://127.0.0.1:9", "--station", "SIM-:1", "--levels", "1", "--stepped"]
    proc = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", *argv],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ['{"ready": true}'], proc.stdout
