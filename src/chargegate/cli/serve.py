"""`chargegate serve`: the gateway under uvicorn, with the process tuned for many sockets."""

from __future__ import annotations

import argparse
import gc
import logging
from typing import TypeVar

from chargegate.settings import Settings

from .open_files import raise_open_file_limit

log = logging.getLogger(__name__)

T = TypeVar("T")


# The collector's thresholds while serving (Python's default: 700, 10, 10). A full collection
# walks every live object: with 10,000 stations connected, about 0.7 s with the event loop
# stopped, and with the default thresholds one came about once a minute under heartbeats alone
# (objects that outlive two young collections count toward the next full one), and every few
# seconds while stations connect. With young collections every 50,000 allocations instead of
# 700, what a heartbeat or a command allocates has ended by then and is freed by its
# reference count, so next to nothing is promoted and full collections stay rare: 10,000
# stations, heartbeat every 10 s, 120 s measured: heartbeat p99 81.7 -> 4.4 ms, no full
# collection after start-up instead of one of 0.73 s, boot 22.6 -> 17.1 s. Objects in cycles
# wait a little longer for the collector; everything else is freed when last used, as before.
GC_THRESHOLDS = (50_000, 20, 10)


def settle(app: T) -> T:
    """Leaves what start-up built (modules, routes, schemas, SQLAlchemy's metadata: some 160,000
    objects) out of the garbage collector's full collections, which otherwise walked all of it:
    measured at 50 commands in flight, a full collection (about one every 20 s) paused the
    event loop 190 ms; after this, 40 ms (throughput: no change beyond the machine's noise).
    Nothing start-up built is meant to be freed. Then sets `GC_THRESHOLDS`."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return app


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from chargegate.app import create_app

    before, after = raise_open_file_limit()
    log.info(
        "open-file limit %d%s: at most about that many stations and peer connections",
        after,
        f" (raised from {before})" if after > before else "",
    )
    settings = Settings()
    if settings.public_url == Settings.model_fields["public_url"].default and (
        args.host,
        args.port,
    ) != ("127.0.0.1", 8080):
        settings.public_url = f"http://{args.host}:{args.port}"
    uvicorn.run(
        settle(create_app(settings)),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        ws_per_message_deflate=settings.ws_per_message_deflate,
        ws_ping_interval=None,  # OCPP heartbeats keep the line alive
    )
    return 0
