"""Security tests: the fuzz case counts are printed at the end of the run."""

from __future__ import annotations

import pytest

from .fuzz_counts import COUNTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if COUNTS:
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(COUNTS.items()))
        terminalreporter.write_line(f"fuzz: {counts}")
