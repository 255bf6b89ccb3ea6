"""Every model a server process serves, by name: each loaded, verified, reloaded and ready on its own.

The models are the default one (DEFAULT_MODEL_NAME), the ones REQUIRED_MODELS names, and every model
with a published version in the store, up to MAX_MODELS in all (in name order); a model published
while the server runs is found at the next poll. One model failing to load leaves the others
serving. Readiness (the rule /health/ready applies): every required model serves a verified
version; REQUIRED_MODELS is the default model unless set, `*` means every model found.

With `lazy` loading (MODEL_LOAD=lazy) only the required models load at start; any other loads on its
first request (`ensure_loaded`: concurrent first requests share one load; a request waits at most
`load_wait` seconds, then 503 with Retry-After), and after each load the least recently used models
are unloaded until what the loaded models hold (measured at load) fits `budget`, never a required
model, one with a request in flight or one a rollout is running on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from src import metrics
from src.errors import ModelNotReadyError, ModelStoreError
from src.serving.drift_window import DriftSettings
from src.serving.model_state import ModelState
from src.serving.rollout_traffic import Guards
from src.store.registry import ModelRegistry

logger = logging.getLogger(__name__)

EVERY_MODEL = "*"


def parse_required(value: str) -> list[str]:
    """REQUIRED_MODELS as a list of names (`*` stays as it is)."""
    return [name.strip() for name in value.split(",") if name.strip()]


class ServedModels:
    """The process's ModelStates by name, found in one or more stores (the volume, then the image's).

    Every model costs its size in memory in every worker, so at most `max_models` are served; models
    past the cap are logged once and wait, the default and required ones always come first.
    """

    def __init__(
        self,
        registries: Sequence[ModelRegistry],
        *,
        default_name: str,
        required: Sequence[str] = (),
        max_models: int,
        guards: Guards | None = None,
        drift: DriftSettings | None = None,
        lazy: bool = False,
        budget: int = 1 << 30,
        load_wait: float = 10.0,
    ) -> None:
        if not registries:
            raise ValueError("serving needs at least one model store")
        self.registries = list(registries)
        self.max_models = max_models
        self.guards = guards or Guards()
        self.drift = drift or DriftSettings()
        self.skipped: set[str] = set()  # found, but over MAX_MODELS: logged once each
        self.default_name = default_name
        self.every_model_required = EVERY_MODEL in required
        self.required = [name for name in required if name != EVERY_MODEL] or [default_name]
        self.lazy, self.budget, self.load_wait = lazy, budget, load_wait
        self.models: dict[str, ModelState] = {}
        for name in [default_name, *self.required]:
            self._add(name)

    @property
    def default(self) -> ModelState:
        """The default model's state: what /predict and /model serve."""
        return self.models[self.default_name]

    def _add(self, name: str) -> ModelState:
        state = self.models.get(name)
        if state is None:
            stores = [store for registry in self.registries for store in registry.stores(name)]
            state = self.models[name] = ModelState(*stores, name=name, guards=self.guards, drift=self.drift)
        return state

    def discover(self) -> list[str]:
        """Add every model the stores hold that is not served yet; returns the new names."""
        found: set[str] = set()
        for registry in self.registries:
            try:
                found.update(registry.names())
            except ModelStoreError as error:
                logger.warning("cannot list models in %s: %s", registry.root, error.message)
        new = sorted(found - self.models.keys())
        room = max(0, self.max_models - len(self.models))
        for name in new[room:]:
            if name not in self.skipped:
                self.skipped.add(name)
                logger.warning(
                    "model %s is in the store but not served: this server already serves %d models "
                    "(MAX_MODELS); each costs its size in memory in every worker",
                    name,
                    len(self.models),
                )
        new = new[:room]
        for name in new:
            self._add(name)
        if new:
            logger.info("found models %s", ", ".join(new))
        return new

    def load_all(self) -> None:
        """Find the models and load each (start-up; with lazy loading, the required ones); a failure
        leaves that one model not ready."""
        self.discover()
        for state in list(self.models.values()):
            if self.loads_now(state):
                state.load()
            else:
                state.not_ready_reason = "not loaded yet: it loads on its first request (MODEL_LOAD=lazy)"
        self._report()

    def loads_now(self, state: ModelState) -> bool:
        """Whether a model is kept loaded whatever its use: every model when eager, the required ones when lazy."""
        return not self.lazy or state.name in self.required_names()

    def loaded_bytes(self) -> int:
        """What this worker's loaded models hold, as measured at load."""
        return sum(state.memory_bytes for state in self.models.values())

    async def ensure_loaded(self, state: ModelState) -> None:
        """Load a lazily served model on its first request, once however many ask at the same time, then
        unload the least recently used to stay within the budget; ModelNotReadyError (503) if its load
        takes longer than `load_wait` or fails."""
        state.last_used = time.monotonic()
        if state.predictor is not None or self.loads_now(state):
            return
        if state.loading is None:
            wait = state.retry_in()
            if wait is not None:  # it failed, and nothing has changed since: no new load for this request
                raise ModelNotReadyError(state.name, state.not_ready_reason or "its load failed", retry_after=wait)
            state.loading = asyncio.ensure_future(self._load(state))
        try:
            loaded = await asyncio.wait_for(asyncio.shield(state.loading), self.load_wait)
        except TimeoutError:
            raise ModelNotReadyError(state.name, f"still loading after {self.load_wait:g} s") from None
        if not loaded:
            raise ModelNotReadyError(state.name, state.not_ready_reason or "its load failed")

    async def _load(self, state: ModelState) -> bool:
        try:
            loaded = await asyncio.to_thread(state.load, kind="first_request")
        finally:
            state.loading = None
        if loaded:
            self.evict(keep=state)
        self._report()
        return loaded

    def evict(self, keep: ModelState | None = None) -> list[str]:
        """Unload the least recently used models until the loaded ones fit the budget; the names unloaded.

        Never a model kept loaded (a required one), one with a request in flight, one a rollout runs on,
        nor `keep` (the one just loaded for a waiting request)."""
        unloaded: list[str] = []
        total = self.loaded_bytes()
        if total <= self.budget:
            return unloaded
        candidates = sorted(
            (
                state
                for state in self.models.values()
                if state.predictor is not None
                and state is not keep
                and not self.loads_now(state)
                and state.in_flight == 0
                and state.traffic is None
            ),
            key=lambda state: state.last_used,
        )
        for state in candidates:
            if total <= self.budget:
                break
            held = state.memory_bytes
            if state.unload(f"least recently used, to stay within MODEL_MEMORY_BUDGET ({self.budget:,} bytes)"):
                total -= held
                unloaded.append(state.name)
                metrics.labelled(metrics.MODEL_EVICTIONS, state.name).inc()
        return unloaded

    def unload(self, name: str) -> bool:
        """Unload one model by hand (the repository's unload); False when it was not loaded."""
        state = self.models[name]
        if state.in_flight or state.traffic is not None:
            raise ModelStoreError(f"model {name} is in use (requests in flight or a running rollout); not unloaded")
        unloaded = state.unload("unloaded by an operator")
        self._report()
        return unloaded

    def _report(self) -> None:
        metrics.MODEL_BYTES_LOADED.set(self.loaded_bytes())
        metrics.MODELS_LOADED.set(sum(state.predictor is not None for state in self.models.values()))

    def required_names(self) -> list[str]:
        """The models readiness waits for."""
        return sorted(self.models) if self.every_model_required else self.required

    def not_ready(self) -> dict[str, str]:
        """The required models that serve nothing, each with the reason."""
        return {
            name: self.models[name].not_ready_reason or "not loaded"
            for name in self.required_names()
            if self.models[name].predictor is None
        }

    async def reload_if_changed(self, *, retry_rejected: bool = False) -> dict[str, bool]:
        """Find new models and load every changed CURRENT of a loaded (or kept-loaded) model; returns, per
        model, whether a new version serves. A lazily served model that is not loaded is left unloaded:
        its first request loads CURRENT, whatever it is then."""
        self.discover()
        changed = {}
        for name, state in list(self.models.items()):
            if state.predictor is None and not self.loads_now(state):
                continue
            try:
                changed[name] = await state.reload_if_changed(retry_rejected=retry_rejected)
            except Exception:  # one model's bad check must not stop the others' reloads
                logger.exception("model %s: store check failed; the other models are checked as usual", name)
                changed[name] = False
        if self.lazy:
            self.evict()
            self._report()
        return changed

    async def watch(self, interval: float) -> None:
        """Poll the store every `interval` seconds: new models, newly published versions."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reload_if_changed()
            except Exception:  # the watcher must outlive any one bad check
                logger.exception("model store check failed")
