"""One model a server process serves, and how it changes: first load, reloads with retries.

src/serving/served_models.py holds one ModelState per model name and watches the store for all of them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import sklearn

from src import metrics
from src.config import DEFAULT_MODEL_NAME
from src.errors import ModelStoreError
from src.serving.predictor import Predictor
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

    def __init__(self, *stores: ModelStore, name: str = DEFAULT_MODEL_NAME) -> None:
        if not stores:
            raise ValueError("a model needs at least one store")
        self.name = name
        self.stores = list(stores)
        self.predictor: Predictor | None = None
        self.not_ready_reason: str | None = "the model has not been loaded yet"
        self.rejection: Rejection | None = None
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
        self.predictor = predictor
        self.not_ready_reason = None

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
        if not self.current_changed():
            return False
        return await asyncio.to_thread(self.load, kind="reload")


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
