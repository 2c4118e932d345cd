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
import time

# The variant's first hex digit: RFC 9562 variant bits (10xx) over the random digit's low two.
_VARIANT = "89ab89ab89ab89ab"


def new_id() -> str:
    """`tttttttt-tttt-7xxx-Vxxx-xxxxxxxxxxxx`: t the Unix time in milliseconds, V in 8, 9, a, b,
    x random (os.urandom)."""
    ms = f"{time.time_ns() // 1_000_000:012x}"
    r = os.urandom(10).hex()
    return f"{ms[:8]}-{ms[8:]}-7{r[:3]}-{_VARIANT[int(r[3], 16)]}{r[4:7]}-{r[7:19]}"
