"""The operator parallel-request cap across every node, in Redis.

Each slot is a member of a sorted set scored by when it lapses, so the slots of a node that died
holding them come back by themselves instead of shrinking the cap forever."""

from __future__ import annotations

import time
import uuid

from redis.asyncio import Redis
from redis.exceptions import RedisError

# Drop lapsed slots, then take one if fewer than the limit are held. Atomic: no two nodes can
# both see nine and both take the tenth.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
  return 1
end
return 0
"""


class RedisCap:
    def __init__(
        self, redis: Redis, limit: int, *, hold_seconds: float, prefix: str = "cg"
    ) -> None:
        """`hold_seconds`: the longest a slot can legitimately be held (a request's timeout
        plus margin); a slot older than that belonged to a node that died."""
        self.limit = limit
        self._redis = redis
        self._key = f"{prefix}:operator-cap"
        self._hold = hold_seconds
        self._acquire = redis.register_script(_ACQUIRE)

    async def acquire(self) -> str | None:
        now = time.time()
        slot = uuid.uuid4().hex
        taken = await self._acquire(
            keys=[self._key], args=[now, self.limit, now + self._hold, slot]
        )
        return slot if taken == 1 else None

    async def release(self, slot: str) -> None:
        try:
            await self._redis.zrem(self._key, slot)
        except RedisError:
            pass  # the slot lapses by itself after hold_seconds

    async def in_flight(self) -> int:
        return int(await self._redis.zcount(self._key, time.time(), "+inf"))
