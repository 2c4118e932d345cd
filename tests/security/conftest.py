"""Security tests count the hostile cases they ran (fuzz_counts.py); the terminal summary prints
the counts, so CI output shows how much was tried."""

from __future__ import annotations

import pytest

from .fuzz_counts import COUNTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not COUNTS:
        return
    terminalreporter.section("hostile input cases run")
    for kind, n in sorted(COUNTS.items()):
        terminalreporter.write_line(f"{kind}: {n}")
