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


def tls_options(settings: Settings) -> dict[str, str]:
    """uvicorn's SSL options from the settings (Security Profile 2); empty without TLS."""
    if not settings.tls_certfile and not settings.tls_keyfile:
        return {}
    if not (settings.tls_certfile and settings.tls_keyfile):
        raise ValueError("TLS needs both CHARGEGATE_TLS_CERTFILE and CHARGEGATE_TLS_KEYFILE")
    return {"ssl_certfile": settings.tls_certfile, "ssl_keyfile": settings.tls_keyfile}


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from chargegate.app import create_app
    from chargegate.http_server import server_config

    before, after = raise_open_file_limit()
    log.info(
        "open-file limit %d%s: at most about that many stations and peer connections",
        after,
        f" (raised from {before})" if after > before else "",
    )
    settings = Settings()
    try:
        tls = tls_options(settings)
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    scheme = "https" if tls else "http"
    if settings.public_url == Settings.model_fields["public_url"].default and (
        tls or (args.host, args.port) != ("127.0.0.1", 8080)
    ):
        settings.public_url = f"{scheme}://{args.host}:{args.port}"
    config = server_config(
        settle(create_app(settings)),
        settings,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        **tls,
    )
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1
