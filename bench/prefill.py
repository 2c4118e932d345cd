"""History written into a benchmark's SQLite database before the gateway starts: N resolved
START_SESSION commands spread over the past days, each with its delivered CommandResult in the
outbox and its two OCPP frames in the communication log, as a gateway that has run for a while
holds them.

A fresh database fits in SQLite's page cache whatever the gateway does; one with months of
commands does not, and an index whose new keys land on random pages (not on its last one) then
costs a read and a write per insert. This makes that visible in the benchmark.

Written in SQL (a recursive CTE): a million commands take seconds, where building the rows in
Python would take minutes.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

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
