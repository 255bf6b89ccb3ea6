"""Every model a server process serves, by name: each loaded, verified, reloaded and ready on its own.

The models are the default one (DEFAULT_MODEL_NAME), the ones REQUIRED_MODELS names, and every model
with a published version in the store, up to MAX_MODELS in all (in name order); a model published
while the server runs is found at the next poll. One model failing to load leaves the others
serving. Readiness (the rule /health/ready applies): every required model serves a verified
version; REQUIRED_MODELS is the default model unless set, `*` means every model found.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from src.errors import ModelStoreError
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
        """Find the models and load each (start-up); a failure leaves that one model not ready."""
        self.discover()
        for state in list(self.models.values()):
            state.load()

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
        """Find new models and load every changed CURRENT; returns, per model, whether a new version serves."""
        self.discover()
        return {
            name: await state.reload_if_changed(retry_rejected=retry_rejected)
            for name, state in list(self.models.items())
        }

    async def watch(self, interval: float) -> None:
        """Poll the store every `interval` seconds: new models, newly published versions."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reload_if_changed()
            except Exception:  # the watcher must outlive any one bad check
                logger.exception("model store check failed")
