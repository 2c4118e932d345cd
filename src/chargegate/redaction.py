"""What log lines may show of a URL: no `response_url` reference, no secret in a query string.

The last segment of an eMSP-side result URL (`/ocpi/emsp/{version}/commands/{command}/{ref}`)
is the unguessable reference that binds a result to a command, so it is as secret as a token;
URLs we POST to (a peer's response_url, a webhook) carry the other side's references and
sometimes its keys in the path, so a log line shows only their origin. `AccessLogRedaction`
applies the first to uvicorn's access log; the gateway's own log lines use the functions."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

MASK = "***"

_RESULT_PATH = re.compile(r"(/ocpi/emsp/[^/]+/commands/[^/]+/)[^/?#]+")
_SECRET_QUERY = re.compile(
    r"((?:^|[?&])(?:token|key|api_key|apikey|secret|password|signature)=)[^&#]*", re.IGNORECASE
)


def path(text: str) -> str:
    """A request path (with or without its query string) with its secrets masked."""
    if "/commands/" in text:
        text = _RESULT_PATH.sub(r"\1" + MASK, text)
    if "=" in text:
        text = _SECRET_QUERY.sub(r"\1" + MASK, text)
    return text


def url(text: str) -> str:
    """An outgoing URL as a log line shows it: scheme, host and port, the path masked."""
    parts = urlsplit(text)
    if not parts.netloc:
        return MASK
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/{MASK}"


class AccessLogRedaction(logging.Filter):
    """uvicorn.access logs `'%s - "%s %s HTTP/%s" %d'` with the path third: masked in place."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            masked = path(args[2])
            if masked is not args[2]:
                record.args = (*args[:2], masked, *args[3:])
        return True


def redact_access_log() -> None:
    """Installs the filter on uvicorn's access logger, once per process."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessLogRedaction) for f in logger.filters):
        logger.addFilter(AccessLogRedaction())
