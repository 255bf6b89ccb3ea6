"""A model's rollout: a candidate version tried beside CURRENT, in its shadow or on a share of traffic.

    <store>/ROLLOUT            the rollout as JSON, replaced atomically (os.replace) at each change
    <store>/.rollout-<id>.end  created with O_EXCL by whoever ends rollout <id> (abort or promote):
                               the first writer wins, on one machine or many sharing the volume

Every worker of every pod reads ROLLOUT at its poll and follows it: loads the candidate while the
rollout runs, drops it once it is aborted or promoted. A new `start` replaces a finished rollout;
a running one must be promoted or aborted first. Nothing here changes CURRENT except `promote`.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from src.errors import ModelStoreError, quoted
from src.store.store import _TEMP_PREFIX, ModelStore, _write_durably, check_version_name, fsync_dir

ROLLOUT_FILE = "ROLLOUT"
_END_MARKER = ".rollout-{id}.end"
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
    if len(content) > _MAX_ROLLOUT_BYTES:
        raise ModelStoreError(f"model {store.name}: {ROLLOUT_FILE} is over {_MAX_ROLLOUT_BYTES} bytes")
    try:
        document = json.loads(content)
    except ValueError:
        raise ModelStoreError(f"model {store.name}: {ROLLOUT_FILE} is not JSON") from None
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
    _write(store, rollout)
    return rollout


def _claim(store: ModelStore, rollout: Rollout) -> bool:
    """Claim the right to end `rollout`; only the first caller, in any process on any machine, gets it."""
    try:
        fd = os.open(store.root / _END_MARKER.format(id=rollout.id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def abort(store: ModelStore, reason: str, rollout_id: str | None = None) -> Rollout:
    """End the running rollout (the one with `rollout_id`, if given) as aborted; CURRENT stays as it is.

    The first abort or promote of a rollout wins; a later one finds it ended and changes nothing.
    """
    rollout = read_rollout(store)
    if rollout is None or not rollout.running or (rollout_id is not None and rollout.id != rollout_id):
        raise ModelStoreError(f"model {store.name} has no running rollout to abort")
    if _claim(store, rollout):
        _write(store, replace(rollout, state="aborted", reason=reason, ended_at=_now()))
    return read_rollout(store) or rollout


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
