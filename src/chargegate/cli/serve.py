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


# The collector's thresholds while serving (Python's default: 700, 10, 10): young collections
# every 50,000 allocations, so that what a heartbeat or a command allocates is freed by its
# reference count before it is promoted, and full collections, which stop the event loop for
# every live object, stay rare (docs/performance.md#garbage-collector).
GC_THRESHOLDS = (50_000, 20, 10)


def settle(app: T) -> T:
    """Leaves what start-up built (modules, routes, schemas, SQLAlchemy's metadata) out of the
    garbage collector's full collections, since none of it is meant to be freed, then sets
    `GC_THRESHOLDS` (docs/performance.md#garbage-collector)."""
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
        ws_max_size=settings.ocpp_max_frame_bytes,  # closed with 1009 before it is read whole
    )
    return 0
