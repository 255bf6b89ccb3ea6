"""The window of recent texts a served version answered, across every worker of the server, and its
drift against the version's reference profile (src/drift/).

Each worker keeps a ring of its last DRIFT_WINDOW texts, one record per text: when it was answered,
its bin for each signal and a tag of the API key that sent it (CRC-32 of its id; 0 with keys off),
16 bytes; the report says how many texts of the window each key sent, so a window one client filled
is seen for what it is. With several workers the ring is also a file in
PROMETHEUS_MULTIPROC_DIR/drift/<model>/<version>/<pid>.window, written whole with one pwrite at most
every FLUSH_SECONDS: not memory-mapped (a file cut short under a mapping killed the process with
SIGBUS at its next store), and not at every request (a system call each cost about 2% of /predict).
A reader (GET /models/{name}/drift, /metrics) takes its own ring as it is and every other worker's
file at whatever length it has now, and keeps the newest DRIFT_WINDOW records by time: the last
texts the server answered, whichever worker did, up to FLUSH_SECONDS late for the others. A record
read while its worker writes it may be half old; one text in hundreds, it moves no verdict. The
files are data: a bin out of range counts nowhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from src.config import Settings, default_of
from src.drift.profile import SIGNALS, ProfileError, ReferenceProfile
from src.drift.statistics import DriftReport, DriftThresholds, judge
from src.serving.predictor import Prediction, Predictor

RECORD = np.dtype([("time", "<f8"), ("bins", "u1", (len(SIGNALS),)), ("key", "<u4")])
_PACK_RECORD = struct.Struct(f"<d{len(SIGNALS)}BI").pack_into  # one RECORD, written in place
assert struct.calcsize(f"<d{len(SIGNALS)}BI") == RECORD.itemsize
FLUSH_SECONDS = 0.25  # how stale another worker's view of this worker's ring may be


@dataclass(frozen=True)
class DriftSettings:
    """The window's size and thresholds (settings DRIFT_*) and where workers share it."""

    size: int = default_of("drift_window")
    thresholds: DriftThresholds = field(default_factory=DriftThresholds)
    folder: Path | None = None  # PROMETHEUS_MULTIPROC_DIR with several workers; None: this process only

    @classmethod
    def from_settings(cls, settings: Settings) -> DriftSettings:
        """DRIFT_WINDOW, DRIFT_MIN_TEXTS, DRIFT_PSI_THRESHOLD, DRIFT_P_VALUE, and the multiprocess folder."""
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        thresholds = DriftThresholds(settings.drift_psi_threshold, settings.drift_p_value, settings.drift_min_texts)
        return cls(settings.drift_window, thresholds, Path(folder) if folder else None)

    def window(self, model: str, predictor: Predictor) -> tuple[DriftWindow | None, str | None]:
        """The served version's window, or None and why there is none (no usable reference profile)."""
        stored = predictor.metadata.get("reference_profile")
        if stored is None:
            return None, (
                f"version {predictor.version} has no reference profile (trained before drift was measured, "
                "or imported without --test or --sample)"
            )
        try:
            profile = ReferenceProfile.from_dict(stored, predictor.classes)
        except ProfileError as error:
            return None, f"version {predictor.version}: {error}"
        try:
            return DriftWindow(model, predictor.version, profile, predictor.classes, self), None
        except OSError as error:
            return None, f"version {predictor.version}: cannot keep the drift window ({error.strerror})"


def key_tag(key: str | None) -> int:
    """What a record keeps of the key id: its CRC-32 (0 for none)."""
    return 0 if key is None else zlib.crc32(key.encode()) or 1


class DriftWindow:
    """One served version's window in this worker, and the server-wide view of it."""

    def __init__(
        self,
        model: str,
        version: str,
        profile: ReferenceProfile,
        classes: list[str],
        settings: DriftSettings,
        *,
        worker: str | None = None,
    ) -> None:
        self.model, self.version, self.profile, self.classes = model, version, profile, classes
        self.size, self.thresholds = settings.size, settings.thresholds
        folder = settings.folder
        self.folder = folder / "drift" / model / version if folder is not None else None
        self.path: Path | None = None
        self.fd: int | None = None
        self.ring = bytearray(self.size * RECORD.itemsize)  # the records' bytes, as the file holds them
        self.records = np.frombuffer(self.ring, dtype=RECORD)  # the same bytes, as an array
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.path = self.folder / f"{worker or os.getpid()}.window"
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            os.pwrite(self.fd, self.ring, 0)
        self.position = 0
        self.flushed = 0.0
        self.pending = False  # a flush is scheduled

    def record(self, predictions: Sequence[Prediction], key: str | None = None) -> None:
        """Add a request's texts (newest last), sent with the API key of id `key` (None: keys off)."""
        now = time.time()
        bins, classes, ring, size, width = self.profile.bins, self.classes, self.ring, self.size, RECORD.itemsize
        tag = key_tag(key)
        for prediction in predictions:
            signals = bins(prediction.tokens, prediction.oov_rate, prediction.score(classes), prediction.label)
            _PACK_RECORD(ring, (self.position % size) * width, now, *signals, tag)
            self.position += 1
        if self.fd is None:
            return
        if now - self.flushed >= FLUSH_SECONDS:
            self.flush(now)
        elif not self.pending:  # a worker that goes quiet still writes its last texts, FLUSH_SECONDS later
            with contextlib.suppress(RuntimeError):  # no event loop (a test's thread): the next record writes
                asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)
                self.pending = True

    def flush(self, now: float | None = None) -> None:
        """This worker's ring to its file, whole: one pwrite."""
        if self.fd is None:
            return
        self.flushed = time.time() if now is None else now
        self.pending = False
        with contextlib.suppress(OSError):  # a full disk, or the file taken away: others miss these texts
            os.pwrite(self.fd, self.ring, 0)

    def _server_records(self) -> np.ndarray:
        if self.folder is None:
            return self.records
        limit = self.size * RECORD.itemsize
        rings = [self.records]  # this worker's own, as it is now
        for path in self.folder.glob("*.window"):
            if path == self.path:
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:  # a worker's file removed while we looked, or a link: skip it
                continue
            try:
                data = os.read(fd, limit)
            except OSError:
                continue
            finally:
                os.close(fd)
            usable = len(data) - len(data) % RECORD.itemsize
            rings.append(np.frombuffer(data[:usable], dtype=RECORD))
        return np.concatenate(rings) if rings else np.zeros(0, dtype=RECORD)

    def _window(self) -> np.ndarray:
        records = self._server_records()
        records = records[np.isfinite(records["time"]) & (records["time"] > 0)]
        if len(records) > self.size:
            records = records[np.argsort(records["time"], kind="stable")[-self.size :]]
        newest: np.ndarray = records
        return newest

    def keys(self, ids: Sequence[str]) -> dict[str, int]:
        """How many texts of the window each key sent, for the key ids known now (`other` for the rest,
        `none` for texts sent with keys off), most first."""
        tags = {key_tag(key): key for key in ids}
        tags[0] = "none"
        values, counts = np.unique(self._window()["key"], return_counts=True)
        sent: dict[str, int] = {}
        for value, count in zip(values.tolist(), counts.tolist(), strict=True):
            name = tags.get(value, "other")
            sent[name] = sent.get(name, 0) + count
        return dict(sorted(sent.items(), key=lambda item: (-item[1], item[0])))

    def counts(self) -> dict[str, list[int]]:
        """Bin counts per signal over the newest DRIFT_WINDOW texts of every worker."""
        records = self._window()
        widths = [len(self.profile.expected(name)) for name in SIGNALS]
        return {
            name: np.bincount(records["bins"][:, i], minlength=width)[:width].tolist()
            for i, (name, width) in enumerate(zip(SIGNALS, widths, strict=True))
        }

    def report(self) -> DriftReport:
        """The window's verdicts against the reference."""
        return judge(self.profile, self.counts(), self.thresholds)

    def close(self) -> None:
        """The version is no longer served here: remove this worker's ring."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
