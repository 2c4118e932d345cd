"""`chargegate …` as its own process beside gateways running in the test's event loop (so the
test must not block: the gateways answer the process's calls)."""

from __future__ import annotations

import asyncio
import os
import sys

from ..conftest import Gateway


def cli_env(emsp: Gateway, **extra: str) -> dict[str, str]:
    # The process reads and writes the gateway's sealed secrets, so it needs the same key.
    key = {"CHARGEGATE_SECRET_KEY": emsp.settings.secret_key} if emsp.settings.secret_key else {}
    return {
        **os.environ,
        **key,
        "CHARGEGATE_DATABASE_URL": emsp.settings.database_url,
        "CHARGEGATE_PUBLIC_URL": emsp.base_url,
        "CHARGEGATE_OUTBOUND_ALLOW": emsp.settings.outbound_allow,  # peers on loopback
        "CHARGEGATE_EMSP_COUNTRY_CODE": "NL",
        "CHARGEGATE_EMSP_PARTY_ID": "EMS",
        "CHARGEGATE_EMSP_BUSINESS_NAME": "Test eMSP",
        **extra,
    }


async def start_cli(emsp: Gateway, *args: str, **env: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chargegate.cli",
        *args,
        env=cli_env(emsp, **env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def run_cli(emsp: Gateway, *args: str, **env: str) -> tuple[int, str, str]:
    process = await start_cli(emsp, *args, **env)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
