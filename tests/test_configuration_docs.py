"""docs/configuration.md names every setting (a row may group several: `CHARGEGATE_A_B` /
`_C` stands for A_B and A_C)."""

from __future__ import annotations

import re
from pathlib import Path

from chargegate.settings import Settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def _documented(text: str) -> set[str]:
    names: set[str] = set()
    for row in text.splitlines():
        if not row.startswith("| `CHARGEGATE_"):
            continue
        first, *more = re.findall(r"`(CHARGEGATE_[A-Z0-9_]+|_[A-Z0-9_]+)`", row.split("|")[1])
        base = first.removeprefix("CHARGEGATE_")
        names.add(base)
        for tail in more:
            if tail.startswith("CHARGEGATE_"):
                names.add(tail.removeprefix("CHARGEGATE_"))
                continue
            # `_MAX_OVERFLOW` after `DATABASE_POOL_SIZE`: the shared head is what both start with.
            parts = base.split("_")
            tail_parts = tail.strip("_").split("_")
            names.update("_".join(parts[:cut] + tail_parts) for cut in range(1, len(parts)))
    return names


def test_every_setting_is_in_docs_configuration() -> None:
    documented = _documented(DOC.read_text())
    missing = sorted(
        name.upper() for name in Settings.model_fields if name.upper() not in documented
    )
    assert missing == [], f"settings missing from docs/configuration.md: {missing}"
