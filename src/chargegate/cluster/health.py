"""Readiness of the cluster link: does Redis answer right now?"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

CHECK_TIMEOUT = 2.0


async def redis_readiness(redis: Redis | None) -> str:
    if redis is None:
        return "not configured"
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await redis.ping()
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}: {exc}"
    return "ok"
