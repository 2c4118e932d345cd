"""The command line as an operator uses it: a real `chargegate serve` process included."""

from __future__ import annotations

import gc
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from chargegate.cli.serve import GC_THRESHOLDS, settle


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "CHARGEGATE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        **extra,
    }


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chargegate.cli", *args],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_party_add_prints_token_a_last_and_list_shows_state(tmp_path: Path) -> None:
    added = _cli(
        tmp_path,
        "party",
        "add",
        "--role",
        "EMSP",
        "--country-code",
        "NL",
        "--party-id",
        "ABC",
        "--name",
        "ABC eMSP",
        "--profile",
        "gireve",
    )
    assert added.returncode == 0, added.stderr
    token_a = added.stdout.strip().splitlines()[-1]
    assert len(token_a) >= 32 and " " not in token_a
    listed = _cli(tmp_path, "party", "list")
    assert "NL/ABC" in listed.stdout and "PENDING" in listed.stdout and "gireve" in listed.stdout
    again = _cli(tmp_path, "party", "add", "--country-code", "NL", "--party-id", "ABC")
    assert again.returncode == 2 and "already registered" in again.stderr


def _open_file_limits(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            unlimited = resource.RLIM_INFINITY
            return (
                unlimited if soft == "unlimited" else int(soft),
                unlimited if hard == "unlimited" else int(hard),
            )
    raise AssertionError("no open-file limit in /proc")


def _low_open_file_limit() -> None:
    # As a service manager starts it: soft 512, the hard limit above it.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))


def test_serve_runs_one_app_with_ocpi_ocpp_and_docs(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "chargegate.cli", "serve", "--port", str(port)],
        env=_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=_low_open_file_limit,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                docs = httpx.get(f"{base}/docs", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        else:
            raise AssertionError("chargegate serve did not start")
        assert docs.status_code == 200
        versions = httpx.get(f"{base}/ocpi/versions")
        assert versions.status_code == 401
        spec = httpx.get(f"{base}/openapi.json").json()
        assert "/ocpi/cpo/{version}/commands/{command}" in spec["paths"]
        # Every station is a socket: serve raised its soft open-file limit to the hard one.
        soft, hard = _open_file_limits(process.pid)
        assert soft == hard or (hard == resource.RLIM_INFINITY and soft > 512), (soft, hard)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_operator_key_add_prints_the_key_last(tmp_path: Path) -> None:
    added = _cli(tmp_path, "operator-key", "add", "--name", "support desk", "--scope", "read")
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip().splitlines()[-1]
    assert key.startswith("cgk_") and len(key) > 30


def test_openapi_lists_every_operator_endpoint_with_examples() -> None:
    from chargegate.app import create_app

    spec = create_app().openapi()
    paths = spec["paths"]
    for path in (
        "/remote_commands/synchronous/{cpId}/get_configuration",
        "/remote_commands/synchronous/{cpId}/change_configurations",
        "/remote_commands/synchronous/{cpId}/reset",
        "/remote_commands/synchronous/{cpId}/unlock_connector/{cpConnectorUuid}",
        "/remote_commands/asynchronous/remote_start_attempt",
        "/remote_commands/asynchronous/remote_start_attempt/{attemptId}",
        "/remote_commands/asynchronous/remote_stop",
        "/remote_commands/asynchronous/{cpId}/clear_cache",
        "/remote_commands/asynchronous/{cpId}/clear_cache/status/{referenceId}",
        "/communication_log",
        "/communication_log/{frame_id}",
        "/stations/{cpId}/lock",
    ):
        assert path in paths, path
    schemas = spec["components"]["schemas"]
    for body in (
        "GetConfigurationBody",
        "ChangeConfigurationsBody",
        "ResetBody",
        "RemoteStartAttemptBody",
        "RemoteStopBody",
    ):
        assert schemas[body].get("examples"), body


def test_station_map_sets_partner_ids(tmp_path: Path) -> None:
    mapped = _cli(tmp_path, "station", "map", "CP-9", "--location-id", "LOC-1", "--evse", "1=EV-A")
    assert mapped.returncode == 0, mapped.stderr
    clash = _cli(tmp_path, "station", "map", "CP-9", "--evse", "2=EV-A")
    assert clash.returncode == 2 and "EV-A" in clash.stderr
    bad = _cli(tmp_path, "station", "map", "CP-9", "--evse", "x")
    assert bad.returncode == 2 and "CONNECTOR=UID" in bad.stderr


def test_serving_leaves_what_start_up_built_out_of_full_collections() -> None:
    before, thresholds = gc.get_freeze_count(), gc.get_threshold()
    app = object()
    try:
        assert settle(app) is app
        assert gc.get_freeze_count() > before
        # Young collections far apart: what requests allocate is freed before one comes.
        assert gc.get_threshold() == GC_THRESHOLDS and GC_THRESHOLDS[0] >= 10_000
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
