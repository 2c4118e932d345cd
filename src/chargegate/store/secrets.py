"""Where the key that seals secrets at rest comes from, and sealing what is not sealed yet.

CHARGEGATE_SECRET_KEY (comma-separated Fernet keys, the sealing one first) when set. Unset, a
key file: created 0600 with a fresh key on first start, read on every later one; beside an
SQLite database by default, so the zero-config quick start seals its secrets without a step.
Unset with PostgreSQL, the key file is in the working directory and a warning says so at
every start: the nodes of a cluster must share one key, so there it belongs in the setting
(docs/security.md#secrets)."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

from sqlalchemy import String, select, type_coerce, update

from chargegate.settings import Settings

from .db import SessionFactory, sqlite_file
from .models import EmspPeer, EmspWebhook, Party
from .secret_box import SecretBox, SecretKeyError, new_key, parse_keys

log = logging.getLogger(__name__)

# The sealed columns: what we must present or sign with, so cannot be a hash.
SEALED = ((Party, "token_b"), (EmspPeer, "token_c"), (EmspWebhook, "secret"))


def key_file(settings: Settings) -> Path:
    if settings.secret_key_file:
        return Path(settings.secret_key_file)
    database = sqlite_file(settings.database_url)
    if database is not None:
        return database.with_name(database.name + ".key")
    return Path("chargegate.key")


def secret_box(settings: Settings) -> SecretBox:
    """The box for this gateway's engine; creates the key file on first start if needed."""
    if settings.secret_key:
        return SecretBox(parse_keys(settings.secret_key))
    if settings.database_url.startswith("sqlite") and sqlite_file(settings.database_url) is None:
        return SecretBox([new_key()])  # an in-memory database lives as long as its key
    path = key_file(settings)
    if not settings.is_sqlite:
        log.warning(
            "CHARGEGATE_SECRET_KEY is not set: secrets at rest are sealed with the key in %s. "
            "Every node of a cluster must use the same key: set CHARGEGATE_SECRET_KEY "
            "(docs/security.md#secrets)",
            path,
        )
    return SecretBox(parse_keys(_read_or_create(path)))


def _read_or_create(path: Path) -> str:
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(new_key() + "\n")
        log.info("created the secret key file %s (keep it with the database's backups)", path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning(
            "the secret key file %s is readable by others (mode %o): chmod 600 it", path, mode
        )
    text = path.read_text().strip()
    if not text:
        raise SecretKeyError(f"the secret key file {path} is empty")
    return text


async def reseal_all(sessions: SessionFactory, box: SecretBox) -> int:
    """Seal, with the key that seals now, every secret stored in the clear (before encryption
    existed) or under an older key; how many were. A few rows (peers, webhooks): run at start."""
    changed = 0
    async with sessions.begin() as s:
        for model, name in SEALED:
            column = getattr(model, name)
            raw = type_coerce(column, String())  # the stored text, not opened
            rows = (await s.execute(select(model.id, raw).where(column.is_not(None)))).all()
            for row_id, stored in rows:
                if box.is_current(stored):
                    continue
                await s.execute(
                    update(model).where(model.id == row_id).values({name: box.open(stored)})
                )
                changed += 1
    if changed:
        log.info("sealed %d secret(s) with the current key", changed)
    return changed
