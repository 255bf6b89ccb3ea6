"""A model's rollout: a candidate version tried beside CURRENT, in its shadow or on a share of traffic.

    <store>/ROLLOUT            the rollout as JSON, replaced atomically (os.replace) at each change
    <store>/.rollout-<id>.end  created with O_EXCL by whoever ends rollout <id> (abort or promote):
                               the first writer wins, on one machine or many sharing the volume
    <store>/.rollout-<id>.next created with O_EXCL by the `start` that follows rollout <id> (or
                               `.rollout-none.next` for a model's first), holding the new id: of two
                               starts at once one wins, the other is refused and told which won

Every worker of every pod reads ROLLOUT at its poll and follows it: loads the candidate while the
rollout runs, drops it once it is aborted or promoted. A new `start` replaces a finished rollout;
a running one must be promoted or aborted first. Nothing here changes CURRENT except `promote`.
ROLLOUT is data, not trust: one that cannot be read (garbage, cut short, too large, a link) makes
every worker answer with CURRENT alone, `status` reports it, and `abort` clears it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from src.documents import DocumentError, read_json
from src.errors import ModelStoreError, quoted
from src.store.store import _TEMP_PREFIX, ModelStore, _write_durably, check_version_name, fsync_dir

ROLLOUT_FILE = "ROLLOUT"
_END_MARKER = ".rollout-{id}.end"
_NEXT_MARKER = ".rollout-{id}.next"
_STALE_START_SECONDS = 60.0
_WINNER_WAIT_SECONDS = 1.0  # how long a losing start waits for the winner's id to be written
_MAX_ROLLOUT_BYTES = 16_384
MODES = ("shadow", "canary")
STATES = ("running", "aborted", "promoted")


@dataclass(frozen=True)
class Rollout:
    """One rollout of a model: its candidate, how it takes traffic, and how it ended."""

    id: str
    candidate: str
    baseline: str  # CURRENT when the rollout started
    mode: str
    percent: float
    state: str = "running"
    reason: str | None = None
    started_at: str = ""
    ended_at: str | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, document: Any, name: str) -> Rollout:
        """A rollout from its JSON, each field checked (the file is on a shared volume)."""
        if not isinstance(document, dict):
            raise ModelStoreError(f"model {name}: {ROLLOUT_FILE} is not a JSON object")
        try:
            rollout = cls(
                id=str(document["id"]),
                candidate=check_version_name(str(document["candidate"])),
                baseline=check_version_name(str(document["baseline"])),
                mode=str(document["mode"]),
                percent=float(document["percent"]),
                state=str(document.get("state", "running")),
                reason=None if document.get("reason") is None else str(document["reason"])[:500],
                started_at=str(document.get("started_at", "")),
                ended_at=None if document.get("ended_at") is None else str(document["ended_at"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ModelStoreError(f"model {name}: {ROLLOUT_FILE} is not a rollout ({error})") from None
        if rollout.mode not in MODES or rollout.state not in STATES or not 0 < rollout.percent <= 100:
            raise ModelStoreError(f"model {name}: {ROLLOUT_FILE} has an invalid mode, state or percent")
        if not rollout.id.isalnum():
            raise ModelStoreError(f"model {name}: {ROLLOUT_FILE} has an invalid id")
        return rollout


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_rollout(store: ModelStore) -> Rollout | None:
    """The model's rollout (running or finished), or None when it never had one."""
    content = store.read_pointer(ROLLOUT_FILE, _MAX_ROLLOUT_BYTES)
    if content is None:
        return None
    try:
        document = read_json(content, f"model {store.name}: {ROLLOUT_FILE}", max_bytes=_MAX_ROLLOUT_BYTES, max_depth=4)
    except DocumentError as error:
        raise ModelStoreError(error.message) from None
    return Rollout.from_dict(document, store.name)


def _write(store: ModelStore, rollout: Rollout) -> None:
    temporary = store.root / f"{_TEMP_PREFIX}{ROLLOUT_FILE}-{secrets.token_hex(4)}"
    _write_durably(temporary, json.dumps(rollout.to_dict(), indent=2).encode())
    os.replace(temporary, store.root / ROLLOUT_FILE)  # noqa: PTH105 - the atomic rename is the point
    fsync_dir(store.root)


def start(store: ModelStore, candidate: str, mode: str, percent: float) -> Rollout:
    """Start trying `candidate` beside CURRENT: verified first, never CURRENT itself, one rollout at a time."""
    if mode not in MODES:
        raise ModelStoreError(f"the mode must be one of {', '.join(MODES)}, not {quoted(mode)}")
    if not 0 < percent <= 100:
        raise ModelStoreError(f"the percentage must be above 0 and at most 100, not {percent:g}")
    current = store.current_version()
    if current is None:
        raise ModelStoreError(f"model {store.name} has no CURRENT version to roll out beside")
    if candidate == current:
        raise ModelStoreError(f"model {store.name}: {candidate} is CURRENT already")
    existing = read_rollout(store)
    if existing is not None and existing.running:
        raise ModelStoreError(
            f"model {store.name} has a running rollout of {existing.candidate}; promote or abort it first"
        )
    store.load(candidate)  # sha256, versions, trusted types: what every server will check
    rollout = Rollout(secrets.token_hex(8), candidate, current, mode, float(percent), started_at=_now())
    winner = _claim_start(store, existing, rollout.id)
    if winner is not None:
        raise ModelStoreError(f"model {store.name}: another start won the race (rollout {winner}); nothing changed")
    _write(store, rollout)
    return rollout


def _create_once(path: os.PathLike[str] | str, content: bytes = b"") -> bool:
    """Create `path` holding `content` if nobody has; only the first caller, in any process on any
    machine sharing the volume, gets True."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def _claim(store: ModelStore, rollout: Rollout) -> bool:
    """Claim the right to end `rollout`; only the first caller, in any process on any machine, gets it."""
    return _create_once(store.root / _END_MARKER.format(id=rollout.id))


def _claim_start(store: ModelStore, previous: Rollout | None, new_id: str) -> str | None:
    """Claim the start that follows `previous`: None if claimed, else the id of the start that won."""
    marker = store.root / _NEXT_MARKER.format(id=previous.id if previous else "none")
    if _create_once(marker, new_id.encode()):
        return None
    try:  # a start that claimed and then died before writing ROLLOUT must not block every later one
        stale = time.time() - marker.lstat().st_mtime > _STALE_START_SECONDS
    except OSError:
        stale = False
    if stale:
        marker.unlink(missing_ok=True)
        if _create_once(marker, new_id.encode()):
            return None
    return _winner(marker)


def _winner(marker: Path) -> str:
    """The id the winning start wrote in `marker`: it creates the file, then writes, so an empty
    file is read again for a moment before the answer says "?"."""
    deadline = time.monotonic() + _WINNER_WAIT_SECONDS
    while True:
        try:
            winner = marker.read_bytes()[:64].decode("ascii", "replace")
        except OSError:
            winner = ""
        if winner.isalnum():
            return winner
        if time.monotonic() > deadline:
            return "?"
        time.sleep(0.005)


def abort(store: ModelStore, reason: str, rollout_id: str | None = None) -> Rollout:
    """End the running rollout (the one with `rollout_id`, if given) as aborted; CURRENT stays as it is.

    The first abort or promote of a rollout wins; a later one changes nothing and is refused, saying
    how the rollout ended. A ROLLOUT that cannot be read is cleared (moved aside, then removed).
    """
    try:
        rollout = read_rollout(store)
    except ModelStoreError as error:
        if rollout_id is not None:  # a worker's guard: only a person clears an unreadable file
            raise
        clear_unreadable(store)
        raise RolloutClearedError(f"{error.message}; cleared it: CURRENT answers alone") from None
    if rollout is None or not rollout.running or (rollout_id is not None and rollout.id != rollout_id):
        raise ModelStoreError(f"model {store.name} has no running rollout to abort")
    if not _claim(store, rollout):
        ended = read_rollout(store) or rollout
        state = ended.state if not ended.running else "being ended"
        raise ModelStoreError(f"model {store.name}: rollout {rollout.id} was ended first by another command ({state})")
    aborted = replace(rollout, state="aborted", reason=reason, ended_at=_now())
    _write(store, aborted)
    return aborted


class RolloutClearedError(ModelStoreError):
    """`abort` found ROLLOUT unreadable and cleared it: done, but not an abort of a rollout."""


def clear_unreadable(store: ModelStore) -> None:
    """Move an unreadable ROLLOUT out of the way (removed with the store's stale temporaries)."""
    aside = store.root / f"{_TEMP_PREFIX}{ROLLOUT_FILE}-unreadable-{secrets.token_hex(4)}"
    os.rename(store.root / ROLLOUT_FILE, aside)  # noqa: PTH104 - a link is moved, never followed
    fsync_dir(store.root)
    if aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside, ignore_errors=True)
    else:
        aside.unlink(missing_ok=True)
    (store.root / _NEXT_MARKER.format(id="none")).unlink(missing_ok=True)  # as if it never had one


def protected_versions(store: ModelStore) -> set[str]:
    """The versions a running rollout needs (its candidate and baseline); every version named in a
    ROLLOUT that cannot be read is unknown, so the caller must protect all (ModelStoreError)."""
    rollout = read_rollout(store)
    if rollout is None or not rollout.running:
        return set()
    return {rollout.candidate, rollout.baseline}


def promote(store: ModelStore) -> Rollout:
    """Make the running rollout's candidate CURRENT, verified first, and end the rollout as promoted.

    The end is claimed before CURRENT moves, so a guard aborting at the same moment either wins
    (nothing changes) or finds the rollout promoted.
    """
    rollout = read_rollout(store)
    if rollout is None or not rollout.running:
        raise ModelStoreError(f"model {store.name} has no running rollout to promote")
    store.load(rollout.candidate)
    if not _claim(store, rollout):
        raise ModelStoreError(f"model {store.name}: the rollout of {rollout.candidate} has just ended")
    store.activate(rollout.candidate)
    promoted = replace(rollout, state="promoted", ended_at=_now())
    _write(store, promoted)
    return promoted
