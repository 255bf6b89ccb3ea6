"""One correction per answered text, the first wins, across the workers of a server.

A SQLite table in the supervisor's control folder (one per server) holds the identity of every
correction taken within FEEDBACK_MAX_AGE: taking a second one of the same text fails, in whichever
worker it arrives. Without a control folder (one process) the table is in memory. Older rows are
dropped as new ones arrive (their tokens have expired, so they cannot come again). Training keeps
the same rule over the stored records (src/model/feedback.py), so corrections taken by several
pods still count once. A database that cannot be used (damaged, a full disk) is logged and
replaced by this process's own table: corrections keep being taken, one per text in this worker,
and training's rule still holds across workers.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

logger = logging.getLogger(__name__)
PRUNE_EVERY = 1000  # corrections between two sweeps of expired rows


def _open(path: Path | None) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:" if path is None else path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout = 5000")
    if path is not None:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = OFF")  # a cache of what was taken, not the corrections themselves
    db.execute("CREATE TABLE IF NOT EXISTS taken (identity TEXT PRIMARY KEY, at REAL NOT NULL)")
    return db


class CorrectionLedger:
    """`claim(identity)`: True for the first correction of a text, False for any later one."""

    def __init__(self, path: Path | None, max_age: float) -> None:
        self.max_age = max_age
        self.lock = threading.Lock()
        self.claims = 0
        self.path = path
        try:
            self.db = _open(path)
        except sqlite3.Error as error:
            self.db = self._own_table(error)

    def _own_table(self, error: sqlite3.Error) -> sqlite3.Connection:
        logger.error(
            "feedback: %s cannot be used (%s); one correction per text is kept in this worker only", self.path, error
        )
        self.path = None
        return _open(None)

    def _run(self, statement: str, values: tuple[object, ...]) -> sqlite3.Cursor:
        try:
            return self.db.execute(statement, values)
        except sqlite3.Error as error:
            self.db = self._own_table(error)
            return self.db.execute(statement, values)

    def claim(self, identity: str, now: float | None = None) -> bool:
        """Record a correction of `identity`; whether it is the first."""
        now = time.time() if now is None else now
        with self.lock:
            cursor = self._run("INSERT OR IGNORE INTO taken VALUES (?, ?)", (identity, now))
            self.claims += 1
            if self.claims % PRUNE_EVERY == 0:
                self._run("DELETE FROM taken WHERE at < ?", (now - self.max_age,))
            return cursor.rowcount == 1

    def release(self, identity: str) -> None:
        """Forget a claim whose correction could not be stored (the client may send it again)."""
        with self.lock:
            self._run("DELETE FROM taken WHERE identity = ?", (identity,))

    def close(self) -> None:
        """Close the database."""
        with self.lock:
            self.db.close()
