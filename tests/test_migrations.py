"""The migrations build exactly the tables store/models.py describes, on both engines, and
0007 keeps the stations an older gateway already served on the air."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

from chargegate.store import db
from chargegate.store.models import Base


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    # Index and server-default details differ between a reflected table and the model on
    # SQLite (partial indexes, literal defaults); columns, types and tables are what matter.
    return [
        diff
        for diff in compare_metadata(context, Base.metadata)
        if not (isinstance(diff, tuple) and diff[0] in {"add_index", "remove_index"})
    ]


async def test_migrations_match_the_models(database_url: str) -> None:
    await db.upgrade_async(database_url)
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(_differences)
    finally:
        await engine.dispose()
    assert differences == []


async def test_stations_seen_before_admission_stay_registered_and_published(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    config = db.alembic_config(url)
    await _run(command.upgrade, config, "0006")
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO stations (id, ocpp_version, locked, first_seen, last_seen)"
                    " VALUES ('CP-OLD', '1.6', 0, '2026-01-01', '2026-01-01')"
                )
            )
        await _run(command.upgrade, config, "head")
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    text("SELECT registered, published, disabled, password_hash FROM stations")
                )
            ).one()
    finally:
        await engine.dispose()
    assert tuple(row) == (1, 1, 0, None)


async def _run(step: Any, config: Any, revision: str) -> None:
    await asyncio.to_thread(step, config, revision)
