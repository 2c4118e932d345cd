"""Readiness: can this node reach what it needs right now?"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

CHECK_TIMEOUT = 2.0


async def readiness(engine: AsyncEngine, redis: Redis | None) -> dict[str, str]:
    return {"database": await _database(engine), "redis": await _redis(redis)}


async def _database(engine: AsyncEngine) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}: {exc}"
    return "ok"


async def _redis(redis: Redis | None) -> str:
    if redis is None:
        return "not configured"
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await redis.ping()
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}: {exc}"
    return "ok"
