"""The data plane: the whole protocol surface, answered once for every protocol, without HTTP.

Server metadata, liveness, readiness, each model's readiness, metadata and state, the repository
index, loads and unloads, and inference: every protocol adapter (the JSON routes, V2 REST, V2 gRPC,
V1, MLflow, health, /models and the rollout and drift routes) reaches a model through these calls
only, and renders what they answer. One visibility rule holds for all of them: a model the key may
not use does not exist for it, and no answer, error or listing names it.

`DataPlane.infer` reads as resolve, check, score: the model is found once (and counted in use while
the request waits and scores), the text rules (src/serving/text_rules.py) are applied, the texts are
scored (src/serving/scoring.py), and the observers (src/serving/observers.py: metrics, trace span,
drift window, prediction log, feedback tokens) are told. Errors are the service's own (src/errors.py);
one about a text names its index, for the adapter to place in its own request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from src import tracing
from src.errors import ConflictError, ModelNotReadyError, ModelStoreError, UnknownModelError, UnknownVersionError
from src.serving.inference import (
    Inference,
    InferenceRequest,
    ModelIndexEntry,
    ModelMetadata,
    ModelReport,
    ServerMetadata,
    output_labels,
)
from src.serving.model_state import ModelState
from src.serving.observers import InferenceObserver, observers
from src.serving.prediction_log import PredictionLog
from src.serving.predictor import Predictor
from src.serving.scoring import answer
from src.serving.served_models import ServedModels
from src.serving.text_rules import TextLimits, check_texts
from src.tenants.access import refuse
from src.tenants.feedback_tokens import FeedbackTokens
from src.tenants.keys import Tenant


class InUse:
    """A model counted in use while a request needs it, its load waited for included: another model's
    load finishing meanwhile must not unload it (the request would answer 503 for nothing), nor may
    an eviction take it while it scores. A class, not a generator: every request enters one."""

    __slots__ = ("state",)

    def __init__(self, state: ModelState) -> None:
        self.state = state

    def __enter__(self) -> ModelState:
        self.state.in_flight += 1
        return self.state

    def __exit__(self, *_: object) -> None:
        self.state.in_flight -= 1


class DataPlane:
    """Every protocol's questions, answered once: metadata, health, readiness and inference."""

    def __init__(
        self,
        models: ServedModels,
        limits: TextLimits,
        log: PredictionLog | None = None,
        tokens: FeedbackTokens | None = None,
        watchers: Sequence[InferenceObserver] | None = None,
    ) -> None:
        self.models = models
        self.limits = limits
        self.observers = list(watchers) if watchers is not None else observers(log, tokens)

    def server_metadata(self) -> ServerMetadata:
        """The server's name, version and protocol extensions."""
        return ServerMetadata()

    def live(self) -> bool:
        """True while the process answers at all."""
        return True

    def not_ready(self) -> dict[str, str]:
        """The required models that serve no verified version, and why (empty: the server is ready)."""
        return self.models.not_ready()

    def ready(self) -> bool:
        """True when every required model serves a verified version (the rule of /health/ready)."""
        return not self.models.not_ready()

    def model_ready(
        self, name: str | None, version: str | None = None, tenant: Tenant | None = None, route: str = ""
    ) -> bool:
        """Whether the model (that version, if named) is loaded and verified; UnknownModelError (404) or
        UnknownVersionError (404) when it is not served here."""
        try:
            self.resolve(name, version, tenant, route)
        except ModelNotReadyError:
            return False
        return True

    def model_metadata(
        self, name: str | None, version: str | None = None, tenant: Tenant | None = None, route: str = ""
    ) -> ModelMetadata:
        """The model's loaded versions, input and outputs, and the order of its classes (of the version
        named, else CURRENT's)."""
        state, predictor = self.find(name, version, tenant, route)
        return ModelMetadata(
            state.name,
            state.loaded_versions,
            predictor.classes,
            predictor.engine,
            predictor.output,
            output_labels(predictor),
        )

    def resolve(
        self, name: str | None = None, version: str | None = None, tenant: Tenant | None = None, route: str = ""
    ) -> tuple[str, Predictor]:
        """A model's name and serving predictor (that version, if named); see `find`."""
        state, predictor = self.find(name, version, tenant, route)
        return state.name, predictor

    def find(
        self, name: str | None = None, version: str | None = None, tenant: Tenant | None = None, route: str = ""
    ) -> tuple[ModelState, Predictor]:
        """A model's state and serving predictor (that version, if named): the one place a request finds its model.

        UnknownModelError (404) for a model not served here or not one of the key's models (no name
        outside them is confirmed), ModelNotReadyError (503) while it has no verified version,
        UnknownVersionError (404) when it serves another version than the one named.
        """
        state = self.model(name, tenant, route)
        return state, self.serving(state, version)

    def model(self, name: str | None, tenant: Tenant | None = None, route: str = "") -> ModelState:
        """A served model's state by name (the default for None), if the key may use it; see `find`.

        One visibility rule: a model the key may not use does not exist for it. It is answered as a name
        nothing serves (404, naming only the key's own models); the refusal is audited as one."""
        state = self.models.models.get(self.models.default_name if name is None else name)
        if state is not None and tenant is not None and not tenant.allows_model(state.name):
            refuse(tenant, route, state.name, "forbidden", "model")
            state = None
        if state is None:
            raise UnknownModelError(name or "", self.visible(tenant))
        return state

    @staticmethod
    def serving(state: ModelState, version: str | None = None) -> Predictor:
        """The model's serving predictor, or that loaded version's; see `find`."""
        predictor = state.predictor
        if predictor is None:
            raise ModelNotReadyError(state.name, state.not_ready_reason or "not loaded")
        if version is not None:
            chosen = state.predictor_for(version)
            if chosen is None:
                raise UnknownVersionError(state.name, version, ", ".join(state.loaded_versions))
            return chosen
        return predictor

    def repository_index(self, tenant: Tenant | None = None, ready: bool | None = None) -> list[ModelIndexEntry]:
        """Every model the key may see, loaded or not: its name, version, state and why (the protocol's
        repository index; `ready` keeps only the models that are, or are not, ready)."""
        entries = []
        for name in sorted(self.visible(tenant)):
            state = self.models.models[name]
            if state.predictor is not None:
                entry = ModelIndexEntry(name, state.predictor.version, "READY", "")
            elif state.loading is not None:
                entry = ModelIndexEntry(name, "", "LOADING", "loading on its first request")
            else:
                entry = ModelIndexEntry(name, "", "UNAVAILABLE", state.not_ready_reason or "not loaded")
            if ready is None or (entry.state == "READY") == ready:
                entries.append(entry)
        return entries

    async def load_model(self, name: str, tenant: Tenant | None = None, route: str = "") -> None:
        """Load a model now (the repository's load): on first use it would have; ModelNotReadyError when it fails."""
        state = self.model(name, tenant, route)
        if state.predictor is not None:
            return
        state.rejection = None  # an operator's load tries at once, as an operator's reload does
        if self.models.lazy and not self.models.loads_now(state):
            await self.models.ensure_loaded(state)
        elif not await asyncio.to_thread(state.load, kind="repository"):
            raise ModelNotReadyError(state.name, state.not_ready_reason or "its load failed")

    def unload_model(self, name: str, tenant: Tenant | None = None, route: str = "") -> None:
        """Unload a model (the repository's unload): ConflictError (409) for a required model, which readiness
        needs, or one in use; it loads again on its next request (lazy) or the next store check (eager)."""
        state = self.model(name, tenant, route)
        if state.name in self.models.required_names():
            raise ConflictError(
                f"model {state.name} is required (REQUIRED_MODELS): unloading it would make the server not ready"
            )
        try:
            self.models.unload(state.name)
        except ModelStoreError as error:
            raise ConflictError(error.message) from None

    def visible(self, tenant: Tenant | None) -> list[str]:
        """The names of the models a key may see: its own (all of them with keys off)."""
        return [name for name in self.models.models if tenant is None or tenant.allows_model(name)]

    def model_reports(self, tenant: Tenant | None = None) -> list[ModelReport]:
        """Each model the key may see, by name: ready or why not, its version and engine, required or not."""
        required = set(self.models.required_names())
        reports = []
        for name in sorted(self.visible(tenant)):
            state = self.models.models[name]
            predictor = state.predictor
            reports.append(
                ModelReport(
                    name,
                    default=name == self.models.default_name,
                    required=name in required,
                    version=predictor.version if predictor else None,
                    classes=predictor.classes if predictor else [],
                    engine=predictor.engine if predictor else None,
                    reason=state.not_ready_reason,
                )
            )
        return reports

    def using(self, state: ModelState) -> InUse:
        """The model counted in use for as long as a request needs it (see InUse)."""
        return InUse(state)

    async def infer(self, request: InferenceRequest) -> Inference:
        """Score a request's texts: resolve, check, score, then tell the observers.

        UnknownModelError (404), ModelNotReadyError (503), InvalidInputError (422, naming its text's
        index). During a rollout (src/serving/rollout_traffic.py) a request naming no version may be
        answered by the candidate (canary) or also scored by it after the answer (shadow).
        """
        started = time.perf_counter()
        state: ModelState | None = None
        try:
            state = self.model(request.model, request.tenant, request.route)
            with self.using(state):
                if self.models.lazy:
                    await self.models.ensure_loaded(state)  # a model served lazily loads on its first request
                predictor = self.serving(state, request.version)
                check_texts(request.texts, self.limits)
                with tracing.child("score"):
                    inference = await answer(request, state, predictor)
        except Exception as error:
            seconds = time.perf_counter() - started
            for observer in self.observers:
                observer.failed(request, state, error, seconds)
            raise
        seconds = time.perf_counter() - started
        for observer in self.observers:
            observer.answered(request, state, inference, seconds)
        return inference
