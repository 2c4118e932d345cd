"""Station identities and HTTP Basic passwords (OCPP Security Profiles 1 and 2): which ids we
serve, what a password may be, and how we keep it (a salted scrypt hash, never the password).

OCPP 2.0.1 `SecurityCtrlr.BasicAuthPassword` is a passwordString of 16 to 40 characters
(a-z, A-Z, 0-9 and `*-_=:+|@.`). OCPP 1.6 `AuthorizationKey` (security whitepaper) is 16 to 20
bytes written as up to 40 hexadecimal digits, and the station presents the decoded bytes as its
Basic password. Both are kept as the hash of one canonical byte string: a password of 32 to 40
hexadecimal digits (even) counts as the key's bytes, anything else as its UTF-8 bytes. So a 1.6
station that presents the bytes and one whose firmware presents the hex digits both match, and
so does a 2.0.1 station given the same hex password as its passwordString.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets

# Station ids we serve: OCPP's identifierString of at most 48 characters narrowed to what every
# URL and log line carries unescaped ([A-Za-z0-9._-]); no ':' (the Basic auth user-id cannot
# hold one), no '*' or '+', and not only dots ('.' and '..' are path segments, not names).
STATION_ID = re.compile(r"^(?!\.+$)[A-Za-z0-9._-]{1,48}$")

PASSWORD_MIN = 16
PASSWORD_MAX = 40
_PASSWORD = re.compile(r"^[A-Za-z0-9*\-_=:+|@.]+$")
_AUTHORIZATION_KEY = re.compile(r"^(?:[0-9A-Fa-f]{2}){16,20}$")

# scrypt at 2^14 × 8 (16 MiB, a few tens of milliseconds): costly to guess offline, cheap enough
# for a station's handshake when computed off the event loop.
_N, _R, _P = 2**14, 8, 1
_SALT_BYTES = 16
_HASH_BYTES = 32


class InvalidStationId(ValueError):
    pass


class InvalidPassword(ValueError):
    pass


def check_station_id(station_id: str) -> str:
    if not STATION_ID.match(station_id):
        raise InvalidStationId(
            f"invalid station id {station_id!r}: 1 to 48 characters of A-Z a-z 0-9 . _ -"
            " (not only dots)"
        )
    return station_id


def check_password(password: str) -> str:
    """A password an operator sets: what both OCPP versions accept (a 2.0.1 passwordString of
    16 to 40 characters; for a 1.6 AuthorizationKey use 32 to 40 hexadecimal digits)."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise InvalidPassword(
            f"a station password has {PASSWORD_MIN} to {PASSWORD_MAX} characters"
            f" (OCPP passwordString), not {len(password)}"
        )
    if not _PASSWORD.match(password):
        raise InvalidPassword(
            "a station password may only hold A-Z a-z 0-9 and * - _ = : + | @ . (OCPP"
            " passwordString)"
        )
    return password


def new_password() -> str:
    """40 hexadecimal digits (160 bits): a valid 2.0.1 BasicAuthPassword and 1.6 AuthorizationKey
    alike, so one generated password works whatever the station speaks."""
    return secrets.token_hex(20)


def authorization_key_of(password: str) -> str:
    """The 1.6 AuthorizationKey (hex digits) that makes a station present `password`: the
    password itself when it already is a key, else its UTF-8 bytes in hex (at most 20 bytes)."""
    if _AUTHORIZATION_KEY.match(password):
        return password
    raw = password.encode()
    if not 16 <= len(raw) <= 20:
        raise InvalidPassword(
            "an OCPP 1.6 AuthorizationKey is 16 to 20 bytes: use 32 to 40 hexadecimal digits"
            " or a password of 16 to 20 characters"
        )
    return raw.hex()


def canonical(password: bytes) -> bytes:
    """The bytes a password is hashed as (see the module's docstring)."""
    try:
        text = password.decode("ascii")
    except UnicodeDecodeError:
        return password
    if _AUTHORIZATION_KEY.match(text):
        return binascii.unhexlify(text)
    return password


def hash_password(password: bytes) -> str:
    """`scrypt$n=…,r=…,p=…$<salt>$<hash>` (base64): says how to check it again."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(canonical(password), salt, _N, _R, _P, _HASH_BYTES)
    return "$".join(
        ("scrypt", f"n={_N},r={_R},p={_P}", _b64(salt), _b64(digest)),
    )


def verify_password(password: bytes, stored: str) -> bool:
    """Whether `password` is the one `stored` was made from; constant time in the digest."""
    try:
        algorithm, params, salt_b64, digest_b64 = stored.split("$")
        values = dict(item.split("=", 1) for item in params.split(","))
        n, r, p = int(values["n"]), int(values["r"]), int(values["p"])
        salt, digest = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
    except (ValueError, KeyError, binascii.Error):
        return False
    if algorithm != "scrypt":
        return False
    candidate = _scrypt(canonical(password), salt, n, r, p, len(digest))
    return hmac.compare_digest(candidate, digest)


def basic_credentials(authorization: str | None) -> tuple[str, bytes] | None:
    """(user-id, password bytes) of an `Authorization: Basic …` header, None if absent or
    malformed. The password stays bytes: a 1.6 AuthorizationKey may be any octets."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    try:
        return user.decode("utf-8"), password
    except UnicodeDecodeError:
        return None


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(
        password, salt=salt, n=n, r=r, p=p, maxmem=2 * 128 * r * n * p, dklen=length
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
