"""`Secret`: a string column sealed on its way into the database and opened on its way out,
with the SecretBox of the engine it goes through (store/db.make_engine attaches it to the
engine's dialect, so two gateways in one process may use different keys). An engine without
a box refuses to write a secret rather than write it in the clear."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from .secret_box import SecretBox

_ATTRIBUTE = "chargegate_secret_box"


def attach(dialect: Dialect, box: SecretBox) -> None:
    setattr(dialect, _ATTRIBUTE, box)


def box_of(dialect: Dialect) -> SecretBox:
    box: SecretBox | None = getattr(dialect, _ATTRIBUTE, None)
    if box is None:
        raise RuntimeError(
            "this engine has no secret key: build it with store.db.make_engine(..., secrets=)"
        )
    return box


class Secret(TypeDecorator[str]):
    """VARCHAR(255) holding `fernet:<token>` (a 64-character token seals to about 190)."""

    impl = String(255)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return box_of(dialect).seal(str(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return box_of(dialect).open(value)
