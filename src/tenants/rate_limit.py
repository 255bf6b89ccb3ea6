"""Per-key rate limits shared by the workers of a pod: the generic cell rate algorithm (GCRA).

A key's whole state is one number, its theoretical arrival time (TAT): a request at `now` is let
through when `max(TAT, now) + 1/rate - now <= burst/rate`, and then moves TAT on by 1/rate. With a
folder (the supervisor's control folder, one per server), each (kind, key) has an 8-byte file there,
read and written by every worker under a lock on that file alone (pread and pwrite, not a memory
map: a mapped file cut short kills the process with SIGBUS at its next access), so the workers
share one budget (not N x the rate) and one key at its limit never waits on another's lock.
Without a folder (one process: tests, `uvicorn`), the state is this process's.

Times are CLOCK_MONOTONIC, the same in every process of a host. A TAT that no request could have
set (more than a burst ahead of now, not finite, a file cut short: from before a reboot, or
damaged) is read as now, so a bad file can let one burst through but never lock a key out.
"""

from __future__ import annotations

import fcntl
import math
import os
import struct
import threading
import time
from pathlib import Path

from src.tenants.keys import Rate

_CELL = struct.Struct("d")


class _Cell:
    """One key's TAT: in a file shared by processes, or in this process only."""

    def __init__(self, path: Path | None) -> None:
        self.lock = threading.Lock()  # POSIX file locks are per process: threads need their own
        self.fd: int | None = None
        self.value = 0.0
        if path is not None:
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)

    def update(self, decide: _Decision) -> float:
        with self.lock:
            if self.fd is None:
                self.value, wait = decide(self.value)
                return wait
            fcntl.lockf(self.fd, fcntl.LOCK_EX)
            try:
                # `now` is read under the lock: read before it, a process that waited for the lock
                # would see a TAT another moved on after its `now` as one no request could have set.
                data = os.pread(self.fd, _CELL.size, 0)
                (tat,) = _CELL.unpack(data) if len(data) == _CELL.size else (math.nan,)  # cut short: now
                tat, wait = decide(tat)
                os.pwrite(self.fd, _CELL.pack(tat), 0)
                return wait
            finally:
                fcntl.lockf(self.fd, fcntl.LOCK_UN)


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
        self.folder = folder
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        self.cells: dict[tuple[str, str], _Cell] = {}
        self.lock = threading.Lock()

    def wait(self, kind: str, key_id: str, rate: Rate, now: float | None = None) -> float:
        """Take one request from the key's budget of `kind` (`requests` or `feedback`); the wait if none is left."""
        cell = self.cells.get((kind, key_id))
        if cell is None:
            with self.lock:
                cell = self.cells.get((kind, key_id))
                if cell is None:  # key ids are from the key file: a name, never a path
                    path = None if self.folder is None else self.folder / f"{kind}.{key_id}"
                    cell = self.cells[(kind, key_id)] = _Cell(path)
        return cell.update(_Decision(rate, now))
