"""Feedback tokens: what lets the client that asked for a prediction, and only it, correct it.

A token is issued for each answered text and binds the request id, the text's index, the model
and version, a digest of the text and the key id, with the time it was issued, under a MAC keyed
by FEEDBACK_SECRET (or a secret made at server start, shared by its workers). Both are BLAKE2b
(128 bits; the MAC in BLAKE2's keyed mode), Python's own, which needs no digest lookup per call
(docs/monitoring.md has its cost per token). It is `<payload>.<mac>` in URL-safe base64:
stateless, so any worker (or any pod with the same secret) can check it, and the correction it
carries names the exact text it corrects.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from src.config import Settings

_HEADER = struct.Struct(">BII16s")  # format version, issued (unix seconds), index, text digest
_FORMAT = 1
_MAC_BYTES = 16
MAX_TOKEN_CHARS = 1024


class TokenError(ValueError):
    """A token that is malformed, forged or expired; the message says which."""


@dataclass(frozen=True)
class Claims:
    """What a valid token says."""

    request_id: str
    index: int
    model: str
    version: str
    text_digest: str  # the text's BLAKE2b-128, hex
    key_id: str
    issued: int

    @property
    def identity(self) -> str:
        """What one correction is of: a text of a request, as one key saw it."""
        return f"{self.key_id}\0{self.request_id}\0{self.index}\0{self.text_digest}"


def text_digest(text: str) -> bytes:
    """The 16 bytes of a text's BLAKE2b a token carries (and a correction record, in hex)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FeedbackTokens:
    """Issues and checks tokens with one secret; `max_age` seconds is how long a token is good for."""

    def __init__(self, secret: bytes, max_age: float) -> None:
        # BLAKE2b takes a key of at most 64 bytes: a longer secret is hashed to one.
        self.key = secret if len(secret) <= 64 else hashlib.blake2b(secret).digest()
        self.max_age = max_age

    def _mac(self, payload: bytes) -> bytes:
        return hashlib.blake2b(payload, key=self.key, digest_size=_MAC_BYTES).digest()

    def issue(
        self, request_id: str, index: int, model: str, version: str, text: str, key_id: str, now: float | None = None
    ) -> str:
        """The token for text `index` of a request."""
        return self.issue_all(request_id, model, version, key_id, [text], now, first=index)[0]

    def issue_all(
        self,
        request_id: str,
        model: str,
        version: str,
        key_id: str,
        texts: Sequence[str],
        now: float | None = None,
        *,
        first: int = 0,
    ) -> list[str]:
        """The tokens of a request's texts, in order (the request's part of the payload made once)."""
        issued = int(time.time() if now is None else now)
        strings = b"".join(_string(value) for value in (request_id, model, version, key_id))
        pack, mac, tokens = _HEADER.pack, self._mac, []
        for index, text in enumerate(texts, start=first):
            payload = pack(_FORMAT, issued, index, text_digest(text)) + strings
            tokens.append(f"{_b64(payload)}.{_b64(mac(payload))}")
        return tokens

    def check(self, token: str, now: float | None = None) -> Claims:
        """The claims of a token this secret issued and that is not older than `max_age`; TokenError if not."""
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            raise TokenError("not a feedback token")
        encoded, mac = token.split(".")
        try:
            payload, given = _unb64(encoded), _unb64(mac)
        except (binascii.Error, ValueError):
            raise TokenError("not a feedback token") from None
        if not hmac.compare_digest(given, self._mac(payload)):
            raise TokenError("the feedback token was not issued by this service (or was altered)")
        if len(payload) < _HEADER.size:
            raise TokenError("not a feedback token")
        version, issued, index, digest = _HEADER.unpack_from(payload)
        strings = _strings(payload[_HEADER.size :])
        if version != _FORMAT or len(strings) != 4:
            raise TokenError("not a feedback token")
        age = (time.time() if now is None else now) - issued
        if age > self.max_age:
            raise TokenError(f"the feedback token is {age:.0f} s old; corrections are taken for {self.max_age:g} s")
        request_id, model, model_version, key_id = strings
        return Claims(request_id, index, model, model_version, digest.hex(), key_id, issued)


def _string(value: str) -> bytes:
    data = value.encode()
    return bytes([len(data)]) + data if len(data) < 256 else bytes([255]) + data[:255]


def _strings(data: bytes) -> list[str]:
    values = []
    while data:
        size = data[0]
        values.append(data[1 : 1 + size].decode(errors="replace"))
        data = data[1 + size :]
    return values


SECRET_FILE = "feedback.secret"


def shared_secret(settings: Settings, folder: Path | None) -> bytes:
    """FEEDBACK_SECRET, else the server's own (made by the supervisor in its control folder), else
    this process's (one process: tests, `uvicorn`)."""
    if settings.feedback_secret is not None:
        return settings.feedback_secret.get_secret_value().encode()
    if folder is not None:
        path = folder / SECRET_FILE
        shared = path.read_bytes() if path.is_file() else b""
        if len(shared) >= 16:  # a file cut short would make tokens anyone could forge: not used
            return shared
    return secrets.token_bytes(32)


def make_server_secret(folder: Path) -> None:
    """The secret the workers of one server share when FEEDBACK_SECRET is unset (readable by them alone)."""
    descriptor = os.open(folder / SECRET_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(secrets.token_bytes(32))
