"""The model a server process is serving, and how it changes: first load, reloads, the store watcher."""

from __future__ import annotations

import asyncio
import logging
import time

import sklearn

from src.api import metrics
from src.errors import ModelNotReadyError, ModelStoreError
from src.model.predictor import Predictor
from src.model.store import ModelStore

logger = logging.getLogger(__name__)


class ModelState:
    """Holds the serving Predictor; a reload swaps the whole object, so a request uses one version.

    Models come from `store`; while it has no published model, from `fallback` (the image's default).
    """

    def __init__(self, store: ModelStore, fallback: ModelStore | None = None) -> None:
        self.stores = [store] if fallback is None else [store, fallback]
        self.predictor: Predictor | None = None
        self.not_ready_reason: str | None = "the model has not been loaded yet"
        self.rejected_version: str | None = None

    def require(self) -> Predictor:
        """The serving predictor, or ModelNotReadyError saying why there is none."""
        predictor = self.predictor
        if predictor is None:
            raise ModelNotReadyError(f"no model is loaded: {self.not_ready_reason}")
        return predictor

    def load(self, *, kind: str = "startup") -> bool:
        """Load and verify CURRENT; on failure keep the model being served. Returns whether it loaded.

        A rejected version is remembered and not tried again by the watcher until CURRENT changes.
        """
        started = time.perf_counter()
        version = None
        try:
            store, version = self._current()
            predictor = Predictor(store.load(version))
        except Exception as error:
            message = error.message if isinstance(error, ModelStoreError) else f"unusable model: {error!r}"
            self.rejected_version = version
            metrics.MODEL_LOADS.labels(kind=kind, outcome="failure").inc()
            if self.predictor is None:
                self.not_ready_reason = message
                metrics.MODEL_READY.set(0)
                logger.error("not ready: %s", message)
            else:
                logger.error("kept model %s; the new one was rejected: %s", self.predictor.version, message)
            return False
        duration = time.perf_counter() - started
        self._swap(predictor)
        metrics.MODEL_LOADS.labels(kind=kind, outcome="success").inc()
        metrics.MODEL_LOAD_DURATION.set(duration)
        metrics.MODEL_LOAD_TIMESTAMP.set(time.time())
        logger.info("serving model %s (%s engine), loaded in %.2f s", predictor.version, predictor.engine, duration)
        return True

    def _swap(self, predictor: Predictor) -> None:
        previous = self.predictor
        if previous is not None:
            metrics.MODEL_INFO.labels(previous.version, sklearn.__version__, previous.engine).set(0)
        metrics.MODEL_INFO.labels(predictor.version, sklearn.__version__, predictor.engine).set(1)
        metrics.MODEL_READY.set(1)
        self.predictor = predictor
        self.not_ready_reason = None

    def _current(self) -> tuple[ModelStore, str | None]:
        """The first store that has a CURRENT version, with that version (the main store if none has)."""
        for store in self.stores:
            version = store.current_version()
            if version is not None:
                return store, version
        return self.stores[0], None

    def current_changed(self) -> bool:
        """Whether CURRENT names another version than the one served (unreadable counts as unchanged)."""
        try:
            _, current = self._current()
        except ModelStoreError as error:
            logger.warning("cannot check the model store: %s", error.message)
            return False
        served = self.predictor.version if self.predictor else None
        return current is not None and current not in (served, self.rejected_version)

    async def reload_if_changed(self, *, retry_rejected: bool = False) -> bool:
        """Load CURRENT in a worker thread if it changed; returns whether a new model now serves.

        The watcher skips a version it rejected before; an operator's reload tries it again.
        """
        if retry_rejected:
            self.rejected_version = None
        if not self.current_changed():
            return False
        return await asyncio.to_thread(self.load, kind="reload")

    async def watch(self, interval: float) -> None:
        """Poll the store every `interval` seconds and swap in a newly published model."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reload_if_changed()
            except Exception:  # the watcher must outlive any one bad check
                logger.exception("model store check failed")
