"""Random identifiers: UUID version 4 text, as `str(uuid.uuid4())` writes it.

Written here rather than taken from `uuid` because a command makes five of them (the OCPI
request and correlation ids, the command id, the OCPP unique id, the result POST's request
id) and `str(uuid.uuid4())` builds a UUID object and an int only to format them: 5 % of the
gateway's profile under load. Same source of randomness (os.urandom), same text.
"""

from __future__ import annotations

import os

# The variant's first hex digit: RFC 4122 variant bits (10xx) over the random digit's low two.
_VARIANT = "89ab89ab89ab89ab"


def new_id() -> str:
    """`xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx` with V in 8, 9, a, b: 122 random bits."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16)]}{h[17:20]}-{h[20:]}"
