"""The process's open-file limit: every station is a socket, so it bounds how many one node
holds.

Linux distributions start services with a soft limit of 1,024 open files and a hard limit far
above it (systemd: 1,024 / 524,288); a gateway left at 1,024 refuses stations after about a
thousand ("Too many open files" on accept). A process may raise its own soft limit up to the
hard one, as nginx, Go programs and the JVM do at start, so `chargegate serve` does."""

from __future__ import annotations

import contextlib
import resource

# With no hard limit, what the soft one is raised to.
UNLIMITED_TARGET = 1 << 20


def raise_open_file_limit() -> tuple[int, int]:
    """Raise the soft limit to the hard one; (before, after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(soft, UNLIMITED_TARGET) if hard == resource.RLIM_INFINITY else hard
    after = soft
    if soft < target:
        # Refused (a container's seccomp policy, say): the limit stays what it was.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            after = target
    return soft, after
