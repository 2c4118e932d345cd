"""Nodes started at the same moment on an empty database all come up: the migrations run once,
under a lock (store/db.py), and the others wait for them instead of racing them. The nodes are
processes of their own (`chargegate serve`), as in a real cluster."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx

from .conftest import TEST_SECRET_KEY
from .support.servers import bound_socket

NODES = 4


async def _ready(client: httpx.AsyncClient, port: int) -> bool:
    try:
        return (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
    except httpx.HTTPError:
        return False


def _free_port() -> int:
    sock = bound_socket()
    port = int(sock.getsockname()[1])
    sock.close()
    return port


async def _serve(database_url: str, port: int, log: Path) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "CHARGEGATE_DATABASE_URL": database_url,
        "CHARGEGATE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CHARGEGATE_SECRET_KEY": TEST_SECRET_KEY,
    }
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "chargegate.cli", "serve", "--port", str(port),
            env=env, stdout=out, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip


async def test_nodes_started_together_on_an_empty_database_all_become_ready(
    database_url: str, tmp_path: Path
) -> None:
    ports = [_free_port() for _ in range(NODES)]
    logs = [tmp_path / f"node-{i}.log" for i in range(NODES)]
    nodes = await asyncio.gather(
        *(_serve(database_url, port, log) for port, log in zip(ports, logs, strict=True))
    )
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            async with asyncio.timeout(60):
                while not all(await asyncio.gather(*(_ready(client, p) for p in ports))):
                    dead = [
                        log.read_text()
                        for n, log in zip(nodes, logs, strict=True)
                        if n.returncode is not None
                    ]
                    assert dead == [], "a node exited while starting"
                    await asyncio.sleep(0.1)
        assert [n.returncode for n in nodes] == [None] * NODES
        text = "".join(log.read_text() for log in logs)
        assert "duplicate key" not in text and "Traceback" not in text
    finally:
        for node in nodes:
            if node.returncode is None:
                node.terminate()
        for node in nodes:
            await asyncio.wait_for(node.wait(), 30)
