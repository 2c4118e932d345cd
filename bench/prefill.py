"""History written into a benchmark's database before the gateway starts: N resolved
START_SESSION commands spread over the past days, each with its delivered CommandResult in the
outbox and its two OCPP frames in the communication log, as a gateway that has run for a while
holds them.

A fresh database fits in the database's page cache whatever the gateway does; one with months
of commands does not, and an index whose new keys land on random pages (not on its last one)
then costs a read and a write per insert. This makes that visible in the benchmark
(docs/performance.md#with-a-million-commands-of-history).

Written in SQL (SQLite: a recursive CTE; PostgreSQL: generate_series): a million commands take
seconds, where building the rows in Python would take minutes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from bench.common import plain_dsn

_DAY = 86_400.0

# The commands, oldest first: ids time-ordered like the gateway's own (domain/ids.py), before
# any of them; stations and remote start ids drawn at random, as live traffic draws them.
_COMMANDS = """
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < :n),
stamped(i, ts) AS (
    SELECT i, strftime('%Y-%m-%d %H:%M:%S', :start + i * :step, 'unixepoch') || '.000000'
    FROM seq
)
INSERT INTO commands (
    id, party_id, ocpi_version, type, station_id, connector_id, request, response_url,
    token_uid, state, result, deadline, created_at, resolved_at, remote_start_id
)
SELECT
    printf('00%06x-%04x-7000-8000-%012x', i / 65536, i % 65536, abs(random()) % 281474976710656),
    :party, '2.2.1', 'START_SESSION', printf('%s%05d', :prefix, abs(random()) % :stations), 1,
    '{}', 'http://127.0.0.1:9/prefill', 'PREFILL', 'RESOLVED', 'ACCEPTED', ts, ts, ts,
    1 + abs(random()) % 2147483646
FROM stamped
"""

_OUTBOX = """
INSERT INTO outbox (
    kind, party_id, method, url, body, ocpi_version, command_id, fifo, attempts,
    next_attempt_at, delivered_at, created_at
)
SELECT 'COMMAND_RESULT', party_id, 'POST', response_url, '{"result":"ACCEPTED"}', '2.2.1', id,
    0, 1, created_at, created_at, created_at
FROM commands WHERE token_uid = 'PREFILL' ORDER BY rowid
"""

_FRAMES = """
INSERT INTO ocpp_messages (
    station_id, direction, message_type, action, unique_id, payload, created_at
)
SELECT station_id, direction, message_type, 'RemoteStartTransaction', id, payload, created_at
FROM (
    SELECT rowid AS n, 0 AS k, station_id, 'OUT' AS direction, 'CALL' AS message_type, id,
        '{"connectorId":1,"idTag":"PREFILL"}' AS payload, created_at
    FROM commands WHERE token_uid = 'PREFILL'
    UNION ALL
    SELECT rowid, 1, station_id, 'IN', 'CALLRESULT', id, '{"status":"Accepted"}', created_at
    FROM commands WHERE token_uid = 'PREFILL'
)
ORDER BY n, k
"""


def prefill_sqlite(
    path: Path, commands: int, stations: int, prefix: str, days: float = 30.0
) -> float:
    """Writes the history into the (migrated) database at `path` for the one party there;
    returns the seconds it took."""
    started = time.monotonic()
    conn = sqlite3.connect(path)
    try:
        [(party,)] = conn.execute("SELECT id FROM parties ORDER BY id LIMIT 1").fetchall()
        params = {
            "n": commands,
            "party": party,
            "prefix": prefix,
            "stations": stations,
            "start": time.time() - days * _DAY,
            "step": days * _DAY / max(commands, 1),
        }
        with conn:
            conn.execute(_COMMANDS, params)
            conn.execute(_OUTBOX)
            conn.execute(_FRAMES)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return time.monotonic() - started


# The same rows on PostgreSQL: $1 party, $2 station prefix, $3 stations, $4 start (Unix
# seconds), $5 seconds between commands, $6 how many.
_PG_COMMANDS = """
INSERT INTO commands (
    id, party_id, ocpi_version, type, station_id, connector_id, request, response_url,
    token_uid, state, result, deadline, created_at, resolved_at, remote_start_id
)
SELECT
    '00' || lpad(to_hex(i / 65536), 6, '0') || '-' || lpad(to_hex(i % 65536), 4, '0')
        || '-7000-8000-' || lpad(to_hex((random() * 281474976710655)::bigint), 12, '0'),
    $1::int, '2.2.1', 'START_SESSION',
    $2::text || lpad(floor(random() * $3::int)::int::text, 5, '0'), 1, '{}'::json,
    'http://127.0.0.1:9/prefill', 'PREFILL', 'RESOLVED', 'ACCEPTED', ts, ts, ts,
    1 + floor(random() * 2147483646)::int
FROM (
    SELECT i, to_timestamp($4::float8 + i * $5::float8) AS ts
    FROM generate_series(1, $6::int) AS i
) AS stamped
"""

_PG_OUTBOX = """
INSERT INTO outbox (
    kind, party_id, method, url, body, ocpi_version, command_id, fifo, attempts,
    next_attempt_at, delivered_at, created_at
)
SELECT 'COMMAND_RESULT', party_id, 'POST', response_url, '{"result":"ACCEPTED"}'::json,
    '2.2.1', id, false, 1, created_at, created_at, created_at
FROM commands WHERE token_uid = 'PREFILL' ORDER BY created_at, id
"""

_PG_FRAMES = """
INSERT INTO ocpp_messages (
    station_id, direction, message_type, action, unique_id, payload, created_at
)
SELECT station_id, direction, message_type, 'RemoteStartTransaction', id, payload::json,
    created_at
FROM (
    SELECT created_at, id, 0 AS k, station_id, 'OUT' AS direction, 'CALL' AS message_type,
        '{"connectorId":1,"idTag":"PREFILL"}' AS payload
    FROM commands WHERE token_uid = 'PREFILL'
    UNION ALL
    SELECT created_at, id, 1, station_id, 'IN', 'CALLRESULT', '{"status":"Accepted"}'
    FROM commands WHERE token_uid = 'PREFILL'
) AS frames
ORDER BY created_at, id, k
"""


def prefill_postgres(
    dsn: str, commands: int, stations: int, prefix: str, days: float = 30.0
) -> float:
    """The same history in the (migrated) PostgreSQL database at `dsn` (a plain
    postgresql:// URL), then ANALYZE, as autovacuum would have by then; the seconds it took."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            party = await conn.fetchval("SELECT id FROM parties ORDER BY id LIMIT 1")
            start = time.time() - days * _DAY
            step = days * _DAY / max(commands, 1)
            async with conn.transaction():
                await conn.execute(_PG_COMMANDS, party, prefix, stations, start, step, commands)
                await conn.execute(_PG_OUTBOX)
                await conn.execute(_PG_FRAMES)
            await conn.execute("ANALYZE")
        finally:
            await conn.close()

    started = time.monotonic()
    asyncio.run(run())
    return time.monotonic() - started


def prefill(database_url: str, commands: int, stations: int, prefix: str) -> float:
    """The history in a benchmark database, SQLite or PostgreSQL; the seconds it took."""
    if database_url.startswith("sqlite"):
        path = Path(database_url.split(":///", 1)[1])
        return prefill_sqlite(path, commands, stations, prefix)
    return prefill_postgres(plain_dsn(database_url), commands, stations, prefix)
