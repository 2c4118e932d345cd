"""A station that sends nothing for longer than its heartbeat interval allows is gone, although
its TCP connection may look open (half-open: a dead NAT, a station without power): serve it only
while it is heard (docs/guarantees.md#liveness)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any


async def serve_while_heard(
    serve: Coroutine[Any, Any, None], last_heard: Callable[[], float], limit: float
) -> bool:
    """Run `serve` to its end (True), or until no frame came for `limit` seconds (False: `serve`
    is cancelled, so the calls waiting on the station fail at once). `limit` 0: no bound."""
    task = asyncio.ensure_future(serve)
    try:
        while True:
            wait = limit - (time.monotonic() - last_heard()) if limit > 0 else None
            if wait is not None and wait <= 0:
                return False
            done, _ = await asyncio.wait({task}, timeout=wait)
            if done:
                task.result()
                return True
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
