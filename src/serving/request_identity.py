"""Who sent a request, in the same terms for HTTP and gRPC: its request id and its client key.

The request id is the client's X-Request-ID (HTTP header or gRPC metadata) when it is sane, else a
new 128-bit random id. The client key is what keeps a client on one version during a canary
(ROLLOUT_KEY_HEADER's value), at most CLIENT_KEY_LENGTH characters.
"""

from __future__ import annotations

import os
import re
import threading

_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
CLIENT_KEY_LENGTH = 256


class _RandomIds:
    """128-bit ids from os.urandom, read 4 KiB at a time: one system call per 256 ids (a call each,
    which releases the GIL, cost the prediction log's writer thread and the event loop a hand-over
    of the GIL per request)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # gRPC's threads make ids too
        self.buffer = b""
        self.offset = 0
        os.register_at_fork(after_in_child=self.forget)

    def forget(self) -> None:
        """A forked child must not hand out its parent's next ids."""
        self.buffer, self.offset = b"", 0

    def next(self) -> str:
        with self.lock:
            if self.offset >= len(self.buffer):
                self.buffer, self.offset = os.urandom(4096), 0
            start = self.offset
            self.offset += 16
            return self.buffer[start : start + 16].hex()


_random_ids = _RandomIds()


def request_id_from(candidate: str | None) -> str:
    """The client's id when it sent a sane one (letters, digits, `._-`, at most 64), else a new one.

    A new id is 128 random bits: one request's id says nothing about another's (a feedback token,
    not the id, is what lets a client correct an answer).
    """
    if candidate is not None and _CLIENT_REQUEST_ID.fullmatch(candidate):
        return candidate
    return _random_ids.next()


def client_key_from(value: str | None) -> str:
    """A canary's client key from the header's (or metadata's) value: "" without one (each request is
    split on its own: an address is often one proxy for every client)."""
    return value[:CLIENT_KEY_LENGTH] if value else ""
