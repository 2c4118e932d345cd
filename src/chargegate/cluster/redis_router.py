"""StationRouter for a cluster: which node holds which station lives in Redis, and a call for a
station held elsewhere travels to its node and back over Redis pub/sub.

Why pub/sub and not lists: a request is only worth delivering to a node that is listening now
(PUBLISH tells us how many are: zero means the holder is gone, answered at once as OFFLINE), and
a late reply must vanish rather than wait in a list. Nothing durable rides on Redis: commands,
results and the outbox are in the database, so a Redis restart loses no result; calls in flight
during it end as TIMEOUT, never hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from chargegate.domain.station_calls import Outcome, StationReply, StationRequest

from . import messages
from .local import LocalStationRouter
from .router import StationLink

log = logging.getLogger(__name__)

# Deletes the registry entry only if this node still owns it: a station that moved to another
# node must keep that node's entry when our stale socket finally closes.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisStationRouter:
    def __init__(
        self,
        redis: Redis,
        node_id: str,
        *,
        prefix: str = "cg",
        entry_ttl: float = 30.0,
        refresh_interval: float = 10.0,
    ) -> None:
        self._redis = redis
        self.node_id = node_id
        self._prefix = prefix
        self._ttl_ms = int(entry_ttl * 1000)
        self._refresh_interval = refresh_interval
        self._local = LocalStationRouter()
        self._pending: dict[str, asyncio.Future[StationReply]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._handlers: set[asyncio.Task[None]] = set()
        self._release = self._redis.register_script(_RELEASE)

    # ---- keys --------------------------------------------------------------------------------

    def _station_key(self, station_id: str) -> str:
        return f"{self._prefix}:station:{station_id}"

    def _inbox(self, node_id: str) -> str:
        return f"{self._prefix}:node:{node_id}"

    # ---- life --------------------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen(), name="cluster-listen"),
            asyncio.create_task(self._refresh_loop(), name="cluster-refresh"),
        ]

    async def stop(self) -> None:
        for task in [*self._tasks, *self._handlers]:
            task.cancel()
        for task in [*self._tasks, *self._handlers]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for future in self._pending.values():
            if not future.done():
                future.set_result(
                    StationReply(Outcome.CONNECTION_LOST, description="this node is stopping")
                )

    # ---- registry ----------------------------------------------------------------------------

    def holds(self, station_id: str) -> bool:
        return self._local.holds(station_id)

    def connected_count(self) -> int:
        return self._local.connected_count()

    async def attach(self, station_id: str, link: StationLink) -> None:
        await self._local.attach(station_id, link)
        try:
            await self._redis.set(self._station_key(station_id), self.node_id, px=self._ttl_ms)
        except RedisError as exc:
            # The refresh loop registers it once Redis is back; local calls work meanwhile.
            log.warning("could not register %s in Redis: %s", station_id, exc)

    def detach(self, station_id: str, link: StationLink) -> None:
        if self._local.holds(station_id) and self._local.link(station_id) is link:
            self._local.detach(station_id, link)
            task = asyncio.ensure_future(self._unregister(station_id))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    async def disconnect(self, station_id: str, reason: str) -> None:
        """Close the station's socket if this node holds it; on another node the station is
        refused when it next connects."""
        await self._local.disconnect(station_id, reason)

    async def _unregister(self, station_id: str) -> None:
        with contextlib.suppress(RedisError):
            await self._release(keys=[self._station_key(station_id)], args=[self.node_id])

    async def owner(self, station_id: str) -> str | None:
        if self._local.holds(station_id):
            return self.node_id
        try:
            value = await self._redis.get(self._station_key(station_id))
        except RedisError as exc:
            log.warning("cannot read the station registry: %s", exc)
            return None
        return value.decode() if isinstance(value, bytes) else value

    async def is_connected(self, station_id: str) -> bool:
        return await self.owner(station_id) is not None

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_interval)
            try:
                await self.refresh()
            except RedisError as exc:
                log.warning("station registry refresh failed: %s", exc)

    async def refresh(self) -> None:
        """Re-register every local station; drop sockets whose station moved to another node."""
        stations = self._local.station_ids()
        if not stations:
            return
        keys = [self._station_key(s) for s in stations]
        owners = await self._redis.mget(keys)
        async with self._redis.pipeline(transaction=False) as pipe:
            for station_id, key, owner in zip(stations, keys, owners, strict=True):
                owner = owner.decode() if isinstance(owner, bytes) else owner
                if owner not in (None, self.node_id):
                    link = self._local.link(station_id)
                    if link is not None:
                        log.info("%s moved to node %s; closing our old socket", station_id, owner)
                        self._local.detach(station_id, link)
                        await link.disconnect("the station is connected to another node")
                    continue
                pipe.set(key, self.node_id, px=self._ttl_ms)
            await pipe.execute()

    # ---- calls -------------------------------------------------------------------------------

    async def call(self, station_id: str, request: StationRequest, timeout: float) -> StationReply:
        if self._local.holds(station_id):
            return await self._local.call(station_id, request, timeout)
        owner = await self.owner(station_id)
        if owner is None:
            return StationReply(Outcome.OFFLINE, description="station is not connected")
        if timeout <= 0:
            return StationReply(Outcome.TIMEOUT, description="deadline passed before sending")
        call_id = uuid.uuid4().hex
        future: asyncio.Future[StationReply] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        message = {
            "kind": "call",
            "id": call_id,
            "reply_to": self.node_id,
            "station_id": station_id,
            "request": messages.request_to_json(request),
            # Wall clock: nodes share no monotonic clock. The holder gives up at the deadline.
            "deadline": time.time() + timeout,
        }
        try:
            listeners = await self._redis.publish(self._inbox(owner), json.dumps(message))
            if listeners == 0:
                return StationReply(
                    Outcome.OFFLINE, description=f"node {owner} holding the station is gone"
                )
            # A little grace for the reply's trip back; the holder already stops at `timeout`.
            return await asyncio.wait_for(future, timeout + 1.0)
        except TimeoutError:
            return StationReply(Outcome.TIMEOUT, description=f"no answer within {timeout:.1f}s")
        except RedisError as exc:
            return StationReply(Outcome.CONNECTION_LOST, description=f"cluster link failed: {exc}")
        finally:
            self._pending.pop(call_id, None)

    async def _listen(self) -> None:
        """Serve calls for our stations and collect replies to our calls; resubscribe after a
        Redis restart."""
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._inbox(self.node_id))
                async for item in pubsub.listen():
                    if item.get("type") == "message":
                        self._dispatch(json.loads(item["data"]))
            except (RedisError, OSError) as exc:
                log.warning("cluster inbox lost (%s); resubscribing", exc)
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("kind") == "reply":
            future = self._pending.get(message["id"])
            if future is not None and not future.done():
                future.set_result(messages.reply_from_json(message["reply"]))
            return
        task = asyncio.create_task(self._serve_call(message))
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _serve_call(self, message: dict[str, Any]) -> None:
        remaining = float(message["deadline"]) - time.time()
        request = messages.request_from_json(message["request"])
        reply = await self._local.call(message["station_id"], request, remaining)
        answer = {"kind": "reply", "id": message["id"], "reply": messages.reply_to_json(reply)}
        with contextlib.suppress(RedisError):
            await self._redis.publish(self._inbox(message["reply_to"]), json.dumps(answer))
