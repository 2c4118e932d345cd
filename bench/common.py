"""Shared pieces of the benchmarks: child processes, ports, statistics, tables, the machine,
the eMSP side of the OCPI credentials handshake and a fresh database per run."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import math
import os
import platform
import select
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, TypeVar

from chargegate.cli.open_files import raise_open_file_limit

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
OCPI_VERSION = "2.2.1"
# The gateway announces this many seconds to the eMSP; the station gets a little less. Long, so
# that a slow run shows up as latency rather than as TIMEOUT results.
LONG_COMMAND_TIMEOUT = 600
# Set in every process a bench starts (they inherit it), so leftovers can be found by their tag.
TAG_VARIABLE = "CHARGEGATE_BENCH_TAG"

T = TypeVar("T")

# ---- processes ------------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit; return the new soft limit."""
    return raise_open_file_limit()[1]


def _child_setup() -> None:  # pragma: no cover - runs in the forked child
    """Own process group (so the bench can end the child's whole tree), die with the bench
    (Linux parent-death signal, so a SIGKILLed bench leaves nothing behind), many fds."""
    os.setpgrp()
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    raise_fd_limit()


@dataclass
class Proc:
    name: str
    argv: list[str]
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            raise RuntimeError(
                f"{self.name} exited with code {self.popen.returncode}; "
                f"last log lines:\n{tail(self.log_path)}"
            )

    def write_line(self, line: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(line.encode() + b"\n")
        self.popen.stdin.flush()

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM to the child's process group, SIGKILL after `grace` seconds."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        # The group may outlive its leader (it should not, but never leave anything behind).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        for stream in (self.popen.stdin, self.popen.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class ProcessSet:
    """Children started by a bench; `with ProcessSet(...)` stops every one of them on exit,
    newest first, whatever happened."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[Proc] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        *,
        pipes: bool = False,
    ) -> Proc:
        log_path = self.log_dir / f"{name}.log"
        full_env = dict(os.environ)
        full_env.setdefault(TAG_VARIABLE, uuid.uuid4().hex)
        full_env.update(env or {})
        full_env["PYTHONUNBUFFERED"] = "1"
        with open(log_path, "wb") as log_file:
            popen = subprocess.Popen(
                list(argv),
                cwd=REPO_ROOT,
                env=full_env,
                stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipes else log_file,
                stderr=log_file,
                preexec_fn=_child_setup,  # benches start children before any thread
            )
        proc = Proc(name, list(argv), popen, log_path)
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc) -> None:
        proc.stop()
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        while self.procs:
            self.procs.pop().stop()

    def __enter__(self) -> ProcessSet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()


def exit_on_sigterm() -> None:
    """Turn SIGTERM/SIGHUP into SystemExit, so that `finally` blocks stop the children."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)


def tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


class LineReader:
    """Lines from a child's stdout pipe, with a timeout (select on the raw fd)."""

    def __init__(self, proc: Proc) -> None:
        assert proc.popen.stdout is not None
        self.proc = proc
        self._fd = proc.popen.stdout.fileno()
        self._buffer = b""

    def readline(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.proc.name}: no line within {timeout:.0f}s")
            ready, _, _ = select.select([self._fd], [], [], min(remaining, 1.0))
            if not ready:
                self.proc.check_alive()
                continue
            chunk = os.read(self._fd, 65536)
            if not chunk:
                self.proc.check_alive()
                raise RuntimeError(f"{self.proc.name} closed its output")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def chargegate_cli(*args: str) -> list[str]:
    """`chargegate ARGS`, run with this interpreter (the console script is the same code)."""
    return python_module("chargegate.cli", *args)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http_ok(url: str, proc: Proc, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        proc.check_alive()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{proc.name} did not answer {url} within {timeout:.0f}s")
        time.sleep(0.1)


def wait_log_count(proc: Proc, needle: str, count: int, timeout: float) -> None:
    """Until `needle` appears `count` times in the child's log."""
    deadline = time.monotonic() + timeout
    while True:
        proc.check_alive()
        with contextlib.suppress(OSError):
            if proc.log_path.read_text(errors="replace").count(needle) >= count:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{proc.name}: fewer than {count} {needle!r} within {timeout:.0f}s")
        time.sleep(0.2)


def read_status_kib(pid: int, key: str = "VmRSS") -> int:
    """A memory figure of /proc/<pid>/status, in KiB (VmRSS: resident now, VmHWM: peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(f"{key} not in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def named_cpu_seconds(name: str) -> dict[int, float]:
    """CPU seconds used so far by each process called `name` (/proc/<pid>/comm): the local
    PostgreSQL server's postmaster, background workers and backends are all `postgres`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            if (entry / "comm").read_text().strip() == name:
                found[int(entry.name)] = cpu_seconds(int(entry.name))
    return found


def cpu_used_since(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds the processes of `named_cpu_seconds` used between two readings: all of it
    for one started meanwhile; one that ended meanwhile is not counted (a pool keeps its
    connections, so the backends that matter live through a level)."""
    return sum(used - before.get(pid, 0.0) for pid, used in after.items())


def cpu_jiffies() -> tuple[int, int]:
    """(stolen, total) clock ticks of all CPUs so far (/proc/stat's first line); (0, 0) where
    unknown. On a virtual machine the hypervisor's other guests take time from ours ("steal"),
    and a level with CPU stolen is not comparable with one without
    (docs/performance.md#stolen-cpu)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        # cpu user nice system idle iowait irq softirq steal [guest guest_nice]
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        # guest time is already counted in user time.
        return fields[7], sum(fields[:8])
    return 0, 0


def stolen_percent(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """The share of the CPUs' time the hypervisor gave elsewhere between two `cpu_jiffies()`."""
    total = after[1] - before[1]
    return 100 * (after[0] - before[0]) / total if total > 0 else None


def tagged_pids(tag: str) -> list[int]:
    """Processes (other than this one) whose environment carries TAG_VARIABLE=tag."""
    needle = f"{TAG_VARIABLE}={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found


# ---- statistics and output -------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) with linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def fmt(value: float | int | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_lines() -> list[str]:
    mem_kib = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return [
        f"machine: {cpu_model()}, {os.cpu_count()} cores, {mem_kib / 1024 / 1024:.1f} GiB RAM, "
        f"{platform.system()} {platform.release()}",
        f"python:  {platform.python_implementation()} {platform.python_version()}",
        load_line("at start"),
    ]


def load_line(when: str) -> str:
    """The load average: other work on the machine skews every figure of a run."""
    try:
        one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    except (OSError, ValueError):
        return f"load average {when}: unknown"
    return f"load average {when}: {one} {five} {fifteen} (1/5/15 min)"


def exact_command(module: str) -> str:
    return "python -m " + module + "".join(" " + shlex.quote(a) for a in sys.argv[1:])


def int_list(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise ValueError(f"expected comma-separated positive integers, got {text!r}")
    return values


# ---- databases and peers ---------------------------------------------------------------------


def plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _postgres_admin(url: str, statement: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(plain_dsn(url), timeout=10)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


@contextlib.contextmanager
def fresh_database(kind: str, work_dir: Path, postgres_url: str) -> Iterator[str]:
    """A database URL for one gateway run: a new SQLite file, or a new PostgreSQL database
    created from `postgres_url` and dropped afterwards."""
    if kind == "sqlite":
        path = work_dir / f"chargegate-{uuid.uuid4().hex[:8]}.db"
        yield f"sqlite+aiosqlite:///{path}"
        return
    if kind != "postgres":
        raise ValueError(f"unknown database kind {kind!r}")
    name = f"cg_bench_{uuid.uuid4().hex[:12]}"
    base, _, _ = postgres_url.rpartition("/")
    _postgres_admin(postgres_url, f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        _postgres_admin(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def party_add(database_url: str, log_dir: Path, party_id: str = "EMS") -> str:
    """`chargegate party add` against the gateway's database; returns token A (its last line)."""
    env = {**os.environ, "CHARGEGATE_DATABASE_URL": database_url}
    done = subprocess.run(
        chargegate_cli(
            "party",
            "add",
            "--role",
            "EMSP",
            "--country-code",
            "NL",
            "--party-id",
            party_id,
            "--name",
            "bench eMSP",
        ),
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    (log_dir / "party-add.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"chargegate party add failed ({done.returncode}): {done.stderr}")
    return done.stdout.strip().splitlines()[-1].strip()


def gateway_env(database_url: str, port: int, **extra: str) -> dict[str, str]:
    return {
        "CHARGEGATE_DATABASE_URL": database_url,
        "CHARGEGATE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CHARGEGATE_COMMAND_TIMEOUT": str(LONG_COMMAND_TIMEOUT),
        "CHARGEGATE_COMMAND_TIMEOUT_MARGIN": "10",
        # The bench's eMSP listens on loopback, which the gateway otherwise refuses to call.
        "CHARGEGATE_OUTBOUND_ALLOW": "127.0.0.0/8,localhost,::1",
        # Simulated fleets connect by any id (docs/security.md#development-mode).
        "CHARGEGATE_OCPP_ADMISSION": "open",
        # Thousands of stations and one load generator on one address at full speed: the
        # per-address cap and the per-peer rate (docs/security.md#limits) would measure
        # themselves.
        "CHARGEGATE_MAX_CONNECTIONS_PER_ADDRESS": "0",
        "CHARGEGATE_RATE_LIMIT_PER_SECOND": "0",
        # A benchmark station carries many real stations' load: the per-station frame rate and
        # communication-log caps (docs/security.md#ocpp-j-robustness) would measure the caps.
        "CHARGEGATE_OCPP_MAX_FRAMES_PER_SECOND": "1000000",
        "CHARGEGATE_OCPP_FRAME_BURST": "1000000",
        "CHARGEGATE_COMM_LOG_STATION_BYTES_PER_MINUTE": "0",
        **extra,
    }


def start_gateway(
    procs: ProcessSet, name: str, database_url: str, port: int, log_level: str, **extra: str
) -> Proc:
    """`chargegate serve` on 127.0.0.1:`port` against `database_url` (settings `extra` added to
    gateway_env's), once it answers /healthz."""
    gateway = procs.start(
        name,
        chargegate_cli(
            "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", log_level
        ),
        env=gateway_env(database_url, port, **extra),
    )
    wait_http_ok(f"http://127.0.0.1:{port}/healthz", gateway)
    return gateway


# ---- the eMSP side of OCPI -------------------------------------------------------------------


def auth_header(token: str, version: str = OCPI_VERSION) -> str:
    """OCPI 2.2.1 sends the token base64-encoded; 2.1.1 as it is."""
    if version == "2.2.1":
        return "Token " + base64.b64encode(token.encode()).decode()
    return f"Token {token}"


def ok_envelope(data: Any = None) -> dict[str, Any]:
    return {
        "data": data,
        "status_code": 1000,
        "status_message": "Success",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


@dataclass
class EmspIdentity:
    """Who the load generator is, and what it serves for the handshake."""

    base_url: str
    country_code: str = "NL"
    party_id: str = "EMS"
    version: str = OCPI_VERSION
    token_b: str = field(default_factory=lambda: "bench-tokenB-" + uuid.uuid4().hex)
    token_c: str | None = None

    def versions(self) -> list[dict[str, str]]:
        return [{"version": self.version, "url": f"{self.base_url}/ocpi/{self.version}"}]

    def details(self) -> dict[str, Any]:
        base = f"{self.base_url}/ocpi/emsp/{self.version}"
        return {
            "version": self.version,
            "endpoints": [
                {
                    "identifier": "credentials",
                    "role": "SENDER",
                    "url": f"{self.base_url}/ocpi/{self.version}/credentials",
                },
                {"identifier": "commands", "role": "SENDER", "url": f"{base}/commands"},
                {"identifier": "sessions", "role": "RECEIVER", "url": f"{base}/sessions"},
            ],
        }

    def credentials(self) -> dict[str, Any]:
        return {
            "token": self.token_b,
            "url": f"{self.base_url}/ocpi/versions",
            "roles": [
                {
                    "role": "EMSP",
                    "business_details": {"name": "bench eMSP"},
                    "party_id": self.party_id,
                    "country_code": self.country_code,
                }
            ],
        }

    def token_b_ok(self, header: str | None) -> bool:
        return header == auth_header(self.token_b, self.version)

    def response_url(self, ref: str) -> str:
        return f"{self.base_url}/ocpi/emsp/{self.version}/commands/START_SESSION/{ref}"


async def handshake(client: Any, gateway_url: str, token_a: str, me: EmspIdentity) -> str:
    """GET versions with token A, then POST our credentials; keep and return token C.
    (The gateway calls our versions and details endpoints with token B meanwhile.)"""
    headers = {"Authorization": auth_header(token_a, me.version)}
    versions = await client.get(f"{gateway_url}/ocpi/versions", headers=headers)
    body = versions.json()
    if versions.status_code != 200 or body.get("status_code") != 1000:
        raise RuntimeError(f"GET versions with token A failed: {versions.status_code} {body}")
    response = await client.post(
        f"{gateway_url}/ocpi/{me.version}/credentials", json=me.credentials(), headers=headers
    )
    body = response.json()
    if response.status_code != 200 or body.get("status_code") != 1000:
        raise RuntimeError(f"credentials handshake failed: {response.status_code} {body}")
    me.token_c = str(body["data"]["token"])
    return me.token_c


def start_session_body(response_url: str, station: str, evse_uid: str) -> dict[str, Any]:
    return {
        "response_url": response_url,
        "token": {
            "country_code": "NL",
            "party_id": "EMS",
            "uid": "BENCH-TOKEN-1",
            "type": "RFID",
            "contract_id": "NL-EMS-C12345678-X",
            "issuer": "bench eMSP",
            "valid": True,
            "whitelist": "ALLOWED",
            "last_updated": "2026-01-01T00:00:00Z",
        },
        "location_id": station,
        "evse_uid": evse_uid,
    }


def station_id(prefix: str, index: int) -> str:
    """Same format as the simulator's fleet (chargegate.sim.fleet.station_id)."""
    return f"{prefix}{index:05d}"


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, on uvloop where installed (uvicorn uses it too, so every process of a bench
    runs the same loop)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def print_flush(text: str = "", stream: IO[str] | None = None) -> None:
    print(text, file=stream or sys.stdout, flush=True)
