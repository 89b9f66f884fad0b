"""Keys per purpose from one master key, and the box that keeps supplier credentials encrypted at rest.

The master key is `TOPUP_SECRET_KEY`; each purpose gets its own key through HKDF-SHA256 with the purpose
as `info`, so no two uses share a key and none is the master key itself.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

CREDENTIALS = "supplier-credentials"
SESSIONS = "web-session"
SANDBOX = "sandbox-gateway"
PREFIX = "fernet:"


def derive(master: str, purpose: str, length: int = 32) -> bytes:
    """A key for one purpose, derived from the master key (HKDF-SHA256, info = the purpose)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=b"topup-gateway", info=purpose.encode())
    return hkdf.derive(master.encode())


def purpose_key(master: str, purpose: str) -> str:
    """A derived key as text (hex), for signers that take a string."""
    return derive(master, purpose).hex()


def session_keys(master: str, old_masters: Sequence[str] = (), configured: str | None = None) -> list[str]:
    """Cookie signing keys, oldest first (the last one signs, all verify): `TOPUP_SESSION_SECRET` when set,
    else derived from the master key, with the old master keys' so a key rotation signs nobody out."""
    if configured:
        return [configured]
    return [purpose_key(m, SESSIONS) for m in reversed(old_masters)] + [purpose_key(master, SESSIONS)]


class CredentialError(Exception):
    """Stored credentials that no configured key opens."""


class CredentialBox:
    """Encrypts a channel's credentials (a JSON object) with a key derived from the master key.

    `old_masters` still decrypt, so credentials written under a previous master key keep working
    until they are re-encrypted (`rotate`) under the current one.
    """

    def __init__(self, master: str, old_masters: Sequence[str] = ()) -> None:
        keys = [Fernet(base64.urlsafe_b64encode(derive(m, CREDENTIALS))) for m in (master, *old_masters)]
        self._current = keys[0]
        self._all = MultiFernet(keys)

    def seal(self, credentials: Mapping[str, Any]) -> str:
        return PREFIX + self._current.encrypt(orjson.dumps(dict(credentials))).decode("ascii")

    def open(self, stored: str | None) -> dict[str, Any]:
        if not stored:
            return {}
        if not stored.startswith(PREFIX):
            raise CredentialError("stored credentials are not sealed")
        try:
            data = orjson.loads(self._all.decrypt(stored[len(PREFIX) :].encode("ascii")))
        except InvalidToken:
            raise CredentialError("no configured key opens these credentials") from None
        if not isinstance(data, dict):
            raise CredentialError("sealed credentials are not an object")
        return data

    def is_current(self, stored: str) -> bool:
        """Is this sealed under the current master key (not only an old one)?"""
        try:
            self._current.decrypt(stored.removeprefix(PREFIX).encode("ascii"))
        except InvalidToken:
            return False
        return True

    def rotate(self, stored: str) -> str:
        """The same credentials sealed under the current key."""
        return PREFIX + self._all.rotate(stored[len(PREFIX) :].encode("ascii")).decode("ascii")


def mask(value: Any) -> str:
    """How a secret is shown: its last two characters at most, never enough to use it."""
    text = str(value)
    if len(text) < 8:
        return "****"
    return "****" + text[-2:]
