"""One model a server process serves, and how it changes: first load, reloads with retries.

src/serving/served_models.py holds one ModelState per model name and watches the store for all of them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass

import sklearn

from src import metrics
from src.config import DEFAULT_MODEL_NAME
from src.errors import ModelStoreError
from src.serving.drift_window import DriftSettings, DriftWindow
from src.serving.predictor import Predictor
from src.serving.rollout_traffic import Guards, RolloutTraffic
from src.store import rollout as rollouts
from src.store.rollout import Rollout
from src.store.store import METADATA_FILE, MODEL_FILE, ModelStore

logger = logging.getLogger(__name__)

# A rejected version is tried again after this long, doubling up to the cap, or at once when its
# files change: a transient error (NFS lag, a file still being copied) must not become permanent.
RETRY_FIRST_SECONDS = 5.0
RETRY_MAX_SECONDS = 300.0


@dataclass
class Rejection:
    """A version that failed to load: when, how often, and what its files looked like then."""

    version: str | None
    signature: tuple[tuple[int, int], ...]
    failures: int
    retry_at: float

    @property
    def next_delay(self) -> float:
        """The wait before the next retry."""
        return float(min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** (self.failures - 1)))


class ModelState:
    """Holds one model's serving Predictor; a reload swaps the whole object, so a request uses one version.

    The model comes from the first of `stores` with a CURRENT version: the volume's store, then the
    old single-model layout, then the image's built-in default (see ModelRegistry.stores).
    """

    def __init__(
        self,
        *stores: ModelStore,
        name: str = DEFAULT_MODEL_NAME,
        guards: Guards | None = None,
        drift: DriftSettings | None = None,
    ) -> None:
        if not stores:
            raise ValueError("a model needs at least one store")
        self.name = name
        self.stores = list(stores)
        self.guards = guards or Guards()
        self.drift_settings = drift or DriftSettings()
        self.drift: DriftWindow | None = None  # CURRENT's window of recent texts, when it has a reference profile
        self.no_drift_reason: str | None = "the model has not been loaded yet"
        self.predictor: Predictor | None = None
        self.rollout: Rollout | None = None  # as last read from the store
        self.rollout_error: str | None = None  # why the store's ROLLOUT could not be read, if it could not
        self.traffic: RolloutTraffic | None = None  # the running rollout's candidate, in this worker
        self._tripped: set[str] = set()  # rollouts this worker aborted, until the store says so
        self.not_ready_reason: str | None = "the model has not been loaded yet"
        self.rejection: Rejection | None = None
        self.memory_bytes = 0  # what the serving predictor holds (its engine's arrays and vocabulary)
        self.in_flight = 0  # requests scoring with it now, in this worker (an evicted model would fail them)
        self.last_used = 0.0  # time.monotonic() of its last request, for least-recently-used eviction
        self.loading: asyncio.Future[bool] | None = None  # a load on first use in progress (MODEL_LOAD=lazy)
        metrics.MODEL_READY.labels(name).set(0)

    @property
    def rejected_version(self) -> str | None:
        """The version that last failed to load, if it is still the one CURRENT names."""
        return self.rejection.version if self.rejection else None

    def load(self, *, kind: str = "startup") -> bool:
        """Load and verify CURRENT; on failure keep the model being served. Returns whether it loaded.

        A rejected version is tried again by the watcher after a growing delay, or when its files change.
        """
        started = time.perf_counter()
        version = None
        store = self.stores[0]
        try:
            store, version = self._current()
            traffic = self.traffic
            if traffic is not None and version == traffic.candidate.version:
                predictor = traffic.candidate  # promoted: the candidate, verified when it was loaded
            else:
                predictor = Predictor(store.load(version))
        except Exception as error:
            message = error.message if isinstance(error, ModelStoreError) else f"unusable model: {error!r}"
            self._remember_rejection(store, version)
            metrics.MODEL_LOADS.labels(model=self.name, kind=kind, outcome="failure").inc()
            if self.predictor is None:
                self.not_ready_reason = message
                metrics.MODEL_READY.labels(self.name).set(0)
                logger.error("model %s not ready (store %s): %s", self.name, store.root, message)
            else:
                logger.error(
                    "model %s: kept version %s; the new one in %s was rejected: %s",
                    self.name,
                    self.predictor.version,
                    store.root,
                    message,
                )
            return False
        duration = time.perf_counter() - started
        self.rejection = None
        self._swap(predictor)
        metrics.MODEL_LOADS.labels(model=self.name, kind=kind, outcome="success").inc()
        metrics.MODEL_LOAD_DURATION.labels(self.name).set(duration)
        metrics.MODEL_LOAD_TIMESTAMP.labels(self.name).set(time.time())
        logger.info(
            "serving model %s version %s (%s engine), loaded in %.2f s",
            self.name,
            predictor.version,
            predictor.engine,
            duration,
        )
        return True

    def _swap(self, predictor: Predictor) -> None:
        previous = self.predictor
        if previous is not None:
            metrics.MODEL_INFO.labels(self.name, previous.version, sklearn.__version__, previous.engine).set(0)
        metrics.MODEL_INFO.labels(self.name, predictor.version, sklearn.__version__, predictor.engine).set(1)
        metrics.MODEL_READY.labels(self.name).set(1)
        if self.drift is not None:
            self.drift.close()
        try:
            self.drift, self.no_drift_reason = self.drift_settings.window(self.name, predictor)
        except Exception as error:  # drift is an observation: a bad profile never keeps a model from serving
            logger.error("model %s version %s: no drift window: %r", self.name, predictor.version, error)
            self.drift, self.no_drift_reason = None, f"version {predictor.version}: no drift window ({error!r})"
        self.predictor = predictor
        self.memory_bytes = predictor.memory_bytes
        self.not_ready_reason = None

    def unload(self, reason: str) -> bool:
        """Stop serving: drop the predictor (and its drift window) to free its memory; whether it held one.

        The caller makes sure no request is scoring with it and no rollout needs it (ServedModels)."""
        predictor = self.predictor
        if predictor is None:
            return False
        metrics.MODEL_INFO.labels(self.name, predictor.version, sklearn.__version__, predictor.engine).set(0)
        metrics.MODEL_READY.labels(self.name).set(0)
        if self.drift is not None:
            self.drift.close()
        self.drift, self.no_drift_reason = None, f"unloaded: {reason}"
        self.predictor, self.memory_bytes, self.not_ready_reason = None, 0, f"unloaded: {reason}"
        logger.info("model %s version %s unloaded: %s", self.name, predictor.version, reason)
        return True

    def _current(self) -> tuple[ModelStore, str | None]:
        """The first store that has a CURRENT version, with that version (the main store if none has)."""
        for store in self.stores:
            version = store.current_version()
            if version is not None:
                return store, version
        return self.stores[0], None

    def _remember_rejection(self, store: ModelStore, version: str | None) -> None:
        previous = self.rejection
        failures = previous.failures + 1 if previous and previous.version == version else 1
        rejection = Rejection(version, _signature(store, version), failures, 0.0)
        rejection.retry_at = time.monotonic() + rejection.next_delay
        self.rejection = rejection

    def _should_retry(self, current: str | None) -> bool:
        rejection = self.rejection
        if rejection is None or rejection.version != current:
            return True
        if time.monotonic() >= rejection.retry_at:
            return True
        store, _ = self._current()
        return _signature(store, current) != rejection.signature

    def retry_in(self) -> float | None:
        """Seconds until a version that failed to load is worth trying again, while CURRENT names it and
        its files are unchanged; None when a load may be tried now (nothing failed, or something changed).

        What lets a lazily served model refuse a request in a stat instead of reading and hashing a bad
        file again for every request."""
        rejection = self.rejection
        if rejection is None:
            return None
        try:
            store, current = self._current()
        except ModelStoreError:
            return None
        if current != rejection.version or _signature(store, current) != rejection.signature:
            return None
        left = rejection.retry_at - time.monotonic()
        return left if left > 0 else None

    def current_changed(self) -> bool:
        """Whether CURRENT names another version than the one served (unreadable counts as unchanged).

        A version rejected before counts again once its retry delay has passed or its files changed.
        """
        try:
            _, current = self._current()
            served = self.predictor.version if self.predictor else None
            return current is not None and current != served and self._should_retry(current)
        except ModelStoreError as error:
            logger.warning("model %s: cannot check the model store: %s", self.name, error.message)
            return False

    async def reload_if_changed(self, *, retry_rejected: bool = False) -> bool:
        """Load CURRENT in a worker thread if it changed; returns whether a new model now serves.

        The watcher retries a rejected version with backoff; an operator's reload tries it at once.
        """
        if retry_rejected:
            self.rejection = None
        changed = self.current_changed() and await asyncio.to_thread(self.load, kind="reload")
        await self.follow_rollout()
        return changed

    def predictor_for(self, version: str) -> Predictor | None:
        """The loaded predictor of `version`: CURRENT's, or the running rollout's candidate."""
        if self.predictor is not None and self.predictor.version == version:
            return self.predictor
        traffic = self.traffic
        if traffic is not None and traffic.candidate.version == version:
            return traffic.candidate
        return None

    @property
    def loaded_versions(self) -> list[str]:
        """The versions this worker holds: CURRENT's, then a rollout's candidate (at most two)."""
        versions = [self.predictor.version] if self.predictor else []
        if self.traffic is not None:
            versions.append(self.traffic.candidate.version)
        return versions

    async def follow_rollout(self) -> None:
        """Follow the store's rollout: load its candidate while it runs, drop it once it has ended."""
        store = self.stores[0]  # a rollout lives in the model's own store
        try:
            rollout = await asyncio.to_thread(rollouts.read_rollout, store)
        except ModelStoreError as error:
            # A ROLLOUT that cannot be read says nothing trustworthy: CURRENT alone answers until it is
            # fixed or cleared (`rollout abort`); the reason is what `status` and the route report.
            if self.rollout_error != error.message:
                logger.error("model %s: cannot read the rollout, CURRENT answers alone: %s", self.name, error.message)
            self.rollout_error = error.message
            if self.traffic is not None:
                self.traffic.stop()
                self.traffic = None
            return
        self.rollout_error = None
        self.rollout = rollout
        traffic = self.traffic
        wanted = (
            rollout is not None
            and rollout.running
            and rollout.id not in self._tripped
            and self.predictor is not None
            and rollout.candidate != self.predictor.version
        )
        if traffic is not None and (not wanted or rollout is None or traffic.rollout.id != rollout.id):
            traffic.stop()
            self.traffic = traffic = None
        if not wanted or traffic is not None or rollout is None:
            return
        try:
            candidate = await asyncio.to_thread(lambda: Predictor(store.load(rollout.candidate)))
        except ModelStoreError as error:
            logger.error("model %s: rollout candidate %s rejected: %s", self.name, rollout.candidate, error.message)
            self._abort(rollout, "candidate", f"the candidate failed to load: {error.message}")
            return
        self.traffic = RolloutTraffic(self.name, rollout, candidate, self.guards, self._on_trip)
        logger.info(
            "model %s: rollout of %s (%s, %g%%) beside %s",
            self.name,
            rollout.candidate,
            rollout.mode,
            rollout.percent,
            self.predictor.version if self.predictor else "-",
        )

    def _on_trip(self, traffic: RolloutTraffic, guard: str, reason: str) -> None:
        """A guard tripped in this worker: stop the candidate now, abort the rollout in the store."""
        if self.traffic is traffic:
            self.traffic = None
        self._abort(traffic.rollout, guard, reason)

    def _abort(self, rollout: Rollout, guard: str, reason: str) -> None:
        self._tripped.add(rollout.id)
        store = self.stores[0]

        def write() -> None:
            try:
                rollouts.abort(store, f"{guard}: {reason}", rollout.id)
            except ModelStoreError as error:  # already ended by another worker or pod: theirs stands
                logger.info("model %s: rollout %s not aborted here: %s", self.name, rollout.id, error.message)

        threading.Thread(target=write, name=f"abort-rollout-{self.name}", daemon=True).start()


def _signature(store: ModelStore, version: str | None) -> tuple[tuple[int, int], ...]:
    """Size and modification time of a version's files: a change means it is worth trying again."""
    if version is None:
        return ()
    stamps = []
    for name in (MODEL_FILE, METADATA_FILE):
        try:
            status = (store.root / version / name).stat()
        except (OSError, ValueError):
            stamps.append((-1, -1))
        else:
            stamps.append((status.st_size, status.st_mtime_ns))
    return tuple(stamps)
