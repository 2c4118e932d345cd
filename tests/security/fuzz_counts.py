"""How many hostile cases each fuzz test sent, for the summary at the end of the run
(tests/security/conftest.py prints it)."""

from __future__ import annotations

from collections import Counter

COUNTS: Counter[str] = Counter()


def record(kind: str, n: int = 1) -> None:
    """Add `n` cases of `kind` (e.g. "schemathesis cases") to this run's totals."""
    COUNTS[kind] += n
