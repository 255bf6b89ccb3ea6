"""One correction per answered text, the first wins, across the workers of a server.

A SQLite table in the supervisor's control folder (one per server) holds the identity of every
correction taken within FEEDBACK_MAX_AGE: taking a second one of the same text fails, in whichever
worker it arrives. Without a control folder (one process) the table is in memory. Older rows are
dropped as new ones arrive (their tokens have expired, so they cannot come again). Training keeps
the same rule over the stored records (src/model/feedback.py), so corrections taken by several
pods still count once.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

PRUNE_EVERY = 1000  # corrections between two sweeps of expired rows


class CorrectionLedger:
    """`claim(identity)`: True for the first correction of a text, False for any later one."""

    def __init__(self, path: Path | None, max_age: float) -> None:
        self.max_age = max_age
        self.lock = threading.Lock()
        self.db = sqlite3.connect(":memory:" if path is None else path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA busy_timeout = 5000")
        if path is not None:
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = OFF")  # a cache of what was taken, not the corrections themselves
        self.db.execute("CREATE TABLE IF NOT EXISTS taken (identity TEXT PRIMARY KEY, at REAL NOT NULL)")
        self.claims = 0

    def claim(self, identity: str, now: float | None = None) -> bool:
        """Record a correction of `identity`; whether it is the first."""
        now = time.time() if now is None else now
        with self.lock:
            cursor = self.db.execute("INSERT OR IGNORE INTO taken VALUES (?, ?)", (identity, now))
            self.claims += 1
            if self.claims % PRUNE_EVERY == 0:
                self.db.execute("DELETE FROM taken WHERE at < ?", (now - self.max_age,))
            return cursor.rowcount == 1

    def release(self, identity: str) -> None:
        """Forget a claim whose correction could not be stored (the client may send it again)."""
        with self.lock:
            self.db.execute("DELETE FROM taken WHERE identity = ?", (identity,))

    def close(self) -> None:
        """Close the database."""
        with self.lock:
            self.db.close()
