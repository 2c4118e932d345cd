"""Identifiers: UUID version 7 text (RFC 9562), time-ordered, as `str(uuid.UUID(...))` writes it.

Time-ordered because most of them become keys of B-tree indexes (the command's primary key,
its outbox row's `command_id`, the communication log's OCPP `unique_id`): a random key puts
each insert on a random leaf page, so every commit writes one page per new key and, once an
index outgrows the page cache, reads one back first. With the time in front, new keys land on
the last page. On SQLite at 50 commands in flight, alternating runs: 1,458–1,507 → 1,591–1,649
cmd/s, the p99 49–59 → 47–48 ms. A key keeps 74 random bits, enough that none is guessed.

Written here rather than taken from `uuid` because Python 3.11 has no `uuid7` and a command
makes five ids (the OCPI request and correlation ids, the command id, the OCPP unique id, the
result POST's request id): building a UUID object and an int only to format them was 5 % of
the gateway's profile under load.
"""

from __future__ import annotations

import os
import secrets
import time

# The variant's first hex digit: RFC 9562 variant bits (10xx) over the random digit's low two.
_VARIANT = "89ab89ab89ab89ab"


def new_id() -> str:
    """`tttttttt-tttt-7xxx-Vxxx-xxxxxxxxxxxx`: t the Unix time in milliseconds, V in 8, 9, a, b,
    x random (os.urandom)."""
    ms = f"{time.time_ns() // 1_000_000:012x}"
    r = os.urandom(10).hex()
    return f"{ms[:8]}-{ms[8:]}-7{r[:3]}-{_VARIANT[int(r[3], 16)]}{r[4:7]}-{r[7:19]}"


# OCPP 2.0.1's remoteStartId: a positive int32, the time in front as in `new_id`.
_REMOTE_START_TIME_BITS = 22  # milliseconds: the time part wraps every 2**22 ms (70 minutes)
_REMOTE_START_RANDOM_BITS = 9  # 22 + 9 = 31


def new_remote_start_id(now_ns: int | None = None) -> int:
    """A positive int32 for OCPP 2.0.1's remoteStartId (kept in the commands table, indexed,
    to link the station's TransactionEvent to its command): the time in milliseconds, modulo
    2**22, then 9 random bits. No node has to coordinate, and a new key lands next to the
    last one in the index (moving through it once every 70 minutes), not on a random page. With
    a million commands in the database (SQLite, 10 and 50 in flight, five alternating pairs
    against random ids): the answer's p99 1.4-4.5 ms lower in every pair, commands/s within
    the machine's noise. Random ids were not unique either: over millions of commands a station
    meets the same one again. Two live commands of one station share an id only if sent in the
    same millisecond and drawing the same 9 bits; lookups prefer the newest command, so an old
    one with the same id does not get in the way."""
    ms = (time.time_ns() if now_ns is None else now_ns) // 1_000_000
    time_part = ms % (1 << _REMOTE_START_TIME_BITS)
    value = time_part << _REMOTE_START_RANDOM_BITS | secrets.randbits(_REMOTE_START_RANDOM_BITS)
    return value or 1
