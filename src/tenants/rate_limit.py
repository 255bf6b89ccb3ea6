"""Per-key rate limits shared by the workers of a pod: the generic cell rate algorithm (GCRA).

A key's whole state is one number, its theoretical arrival time (TAT): a request at `now` is let
through when `max(TAT, now) + 1/rate - now <= burst/rate`, and then moves TAT on by 1/rate. With a
folder (the supervisor's control folder, one per server), every (kind, key) has a slot in one file
there, `cells`: SLOTS slots of a 16-byte digest of the kind and key and the 8-byte TAT, a key's slot
found from its digest by linear probing, once per process. Each slot is read and written under a
lock on its own bytes (pread and pwrite, not a memory map: a mapped file cut short kills the process
with SIGBUS at its next access), so the workers share one budget (not N x the rate), one key at its
limit never waits on another's lock, and a worker holds one open file however many keys it sees.
Past SLOTS keys (far more than a key file may hold), a key's budget is this process's. Without a
folder (one process: tests, `uvicorn`), every budget is this process's.

Times are CLOCK_MONOTONIC, the same in every process of a host. A TAT that no request could have
set (more than a burst ahead of now, not finite, a slot cut short: from before a reboot, or
damaged) is read as now, so a bad file can let one burst through but never lock a key out.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import math
import os
import struct
import threading
import time
from pathlib import Path

from src.tenants.keys import Rate

logger = logging.getLogger(__name__)

SLOTS = 1 << 16  # cells in the shared file: 1.5 MiB at most, written only where keys are
_SLOT = struct.Struct("16sd")  # the cell's digest of (kind, key), its TAT
_TAT = struct.Struct("d")
_EMPTY = bytes(16)
TABLE_NAME = "cells"


def cell_digest(kind: str, key_id: str) -> bytes:
    """The 16 bytes that name a (kind, key) cell in the shared file."""
    return hashlib.blake2b(f"{kind}\0{key_id}".encode(), digest_size=16).digest()


class _Table:
    """The folder's one file of cells, shared by the processes that open it."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        self.lock = threading.Lock()  # POSIX record locks are per process: its threads need their own
        self.offsets: dict[bytes, int] = {}  # this process's map of digest to slot

    def _locked(self, offset: int) -> _SlotLock:
        return _SlotLock(self.fd, offset)

    def find(self, digest: bytes) -> int | None:
        """The offset of the digest's slot, claiming the first empty one it probes; None when full."""
        home = int.from_bytes(digest[:8], "little") % SLOTS
        for step in range(SLOTS):
            offset = (home + step) % SLOTS * _SLOT.size
            with self._locked(offset):
                data = os.pread(self.fd, _SLOT.size, offset)
                found = data[:16] if len(data) >= 16 else _EMPTY  # past the end, or cut short: empty
                if found == digest:
                    return offset
                if found == _EMPTY:
                    os.pwrite(self.fd, _SLOT.pack(digest, math.nan), offset)  # its TAT reads as now
                    return offset
        return None

    def update(self, digest: bytes, decide: _Decision) -> float | None:
        """One GCRA step on the digest's cell; None when the file has no slot for it."""
        with self.lock:
            for _ in range(2):
                offset = self.offsets.get(digest)
                if offset is None:
                    offset = self.find(digest)
                    if offset is None:
                        return None
                    self.offsets[digest] = offset
                with self._locked(offset):
                    # `now` is read under the lock: read before it, a process that waited for the lock
                    # would see a TAT another moved on after its `now` as one no request could have set.
                    data = os.pread(self.fd, _SLOT.size, offset)
                    if data[:16] == digest:
                        tat = _TAT.unpack(data[16:])[0] if len(data) == _SLOT.size else math.nan  # cut short: now
                        tat, wait = decide(tat)
                        os.pwrite(self.fd, _TAT.pack(tat), offset + 16)
                        return wait
                del self.offsets[digest]  # the file was cut short or replaced: find the cell again
            return None


class _SlotLock:
    """An exclusive lock on one slot's bytes, for `with`."""

    __slots__ = ("fd", "offset")

    def __init__(self, fd: int, offset: int) -> None:
        self.fd, self.offset = fd, offset

    def __enter__(self) -> None:
        fcntl.lockf(self.fd, fcntl.LOCK_EX, _SLOT.size, self.offset)

    def __exit__(self, *_: object) -> None:
        fcntl.lockf(self.fd, fcntl.LOCK_UN, _SLOT.size, self.offset)


class _Decision:
    """One request's GCRA step at `now`: the new TAT and the wait (0 when let through)."""

    __slots__ = ("interval", "limit", "now")

    def __init__(self, rate: Rate, now: float | None) -> None:
        self.interval = 1.0 / rate.per_second
        self.limit = rate.burst * self.interval
        self.now = now

    def __call__(self, tat: float) -> tuple[float, float]:
        now = time.monotonic() if self.now is None else self.now
        if not math.isfinite(tat) or tat > now + self.limit:
            tat = now  # impossible state: a stale or damaged cell
        arrival = max(tat, now) + self.interval
        over = arrival - now - self.limit
        if over > 1e-9:
            return tat, over
        return arrival, 0.0


class RateLimiter:
    """`wait(kind, key, rate)`: 0 when a request may go now, else the seconds until it may."""

    def __init__(self, folder: Path | None = None) -> None:
        self.table: _Table | None = None
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            self.table = _Table(folder / TABLE_NAME)
        self.local: dict[bytes, float] = {}  # TATs of this process's own cells, one per key and kind
        self.lock = threading.Lock()
        self.full_logged = False

    def wait(self, kind: str, key_id: str, rate: Rate, now: float | None = None) -> float:
        """Take one request from the key's budget of `kind` (`requests` or `feedback`); the wait if none is left."""
        digest = cell_digest(kind, key_id)
        decide = _Decision(rate, now)
        if self.table is not None:
            wait = self.table.update(digest, decide)
            if wait is not None:
                return wait
            if not self.full_logged:
                self.full_logged = True
                logger.warning("the shared rate file has no free slot: new keys' rates hold per worker")
        with self.lock:
            self.local[digest], wait = decide(self.local.get(digest, 0.0))
            return wait
