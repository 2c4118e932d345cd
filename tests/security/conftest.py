"""Security tests count the hostile cases they ran; the terminal summary prints the counts, so
CI output shows how much was tried (issue 19)."""

from __future__ import annotations

from collections import Counter

import pytest

_cases: Counter[str] = Counter()


def count_cases(kind: str, n: int) -> None:
    _cases[kind] += n


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _cases:
        return
    terminalreporter.section("hostile input cases run")
    for kind, n in sorted(_cases.items()):
        terminalreporter.write_line(f"{kind}: {n}")
