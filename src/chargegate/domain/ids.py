"""Identifiers: UUID version 7 text (RFC 9562), time-ordered, as `str(uuid.UUID(...))` writes it.

Time-ordered because most of them become B-tree keys (the command's primary key, its outbox
row's `command_id`, the communication log's OCPP `unique_id`), and a new key then lands on the
index's last page instead of a random one; 74 random bits are enough that none is guessed.
Formatted here from os.urandom because Python 3.11 has no `uuid7` and a command makes five ids
(docs/performance.md#time-ordered-identifiers).
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
    """A positive int32 for OCPP 2.0.1's remoteStartId (indexed, to link the station's
    TransactionEvent to its command): the time in milliseconds modulo 2**22, then 9 random bits,
    so no node has to coordinate and a new key lands next to the last one in the index
    (docs/performance.md#time-ordered-identifiers). Ids repeat over time, as random ones did;
    two live commands of one station share one only if sent in the same millisecond with the
    same 9 bits, and lookups prefer the station's newest command with the id."""
    ms = (time.time_ns() if now_ns is None else now_ns) // 1_000_000
    time_part = ms % (1 << _REMOTE_START_TIME_BITS)
    value = time_part << _REMOTE_START_RANDOM_BITS | secrets.randbits(_REMOTE_START_RANDOM_BITS)
    return value or 1
