"""Secrets we must send (a peer's token B or C, webhook signing secrets) sealed for the database
with Fernet (AES-128-CBC and HMAC-SHA256, from `cryptography`), under one or more keys.

The first key seals; every key opens, so a new key can be put in front of the old one and the
old one removed once everything is sealed again (Gateway start does that:
store/secrets.reseal_all). A sealed value carries `PREFIX`, so that a value stored in the
clear before encryption existed is still read, and a value that no key opens is an error that
names the setting, never a ciphertext taken for a token. Pure: no files, no settings."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

PREFIX = "fernet:"


class SecretKeyError(Exception):
    """A sealed value that none of the configured keys opens, or an unusable key."""


def new_key() -> str:
    """A fresh key in the form CHARGEGATE_SECRET_KEY takes (32 url-safe base64 bytes)."""
    return Fernet.generate_key().decode("ascii")


def parse_keys(text: str) -> list[str]:
    """CHARGEGATE_SECRET_KEY: comma-separated keys, the one that seals first."""
    return [k.strip() for k in text.split(",") if k.strip()]


class SecretBox:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise SecretKeyError("no secret key given")
        try:
            fernets = [Fernet(k.encode("ascii")) for k in keys]
        except (ValueError, UnicodeEncodeError) as exc:
            raise SecretKeyError(
                "a secret key must be 32 url-safe base64-encoded bytes, as "
                "cryptography.fernet.Fernet.generate_key() makes (docs/security.md#secrets)"
            ) from exc
        self._primary = fernets[0]
        self._all = MultiFernet(fernets)

    def seal(self, plain: str) -> str:
        return PREFIX + self._primary.encrypt(plain.encode("utf-8")).decode("ascii")

    def open(self, stored: str) -> str:
        """The plain value; a value stored before encryption is returned as it is."""
        if not stored.startswith(PREFIX):
            return stored
        try:
            return self._all.decrypt(stored[len(PREFIX) :].encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise SecretKeyError(
                "a stored secret does not open with any key in CHARGEGATE_SECRET_KEY (or the "
                "key file): was the key replaced instead of put in front of the old one?"
            ) from exc

    def is_current(self, stored: str) -> bool:
        """Sealed with the key that seals now (else it should be sealed again)."""
        if not stored.startswith(PREFIX):
            return False
        try:
            self._primary.decrypt(stored[len(PREFIX) :].encode("ascii"))
        except InvalidToken:
            return False
        return True
