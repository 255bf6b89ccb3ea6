"""The data plane: the whole protocol surface, answered once for every protocol, without HTTP.

Server metadata, liveness, readiness, a model's readiness and metadata, and inference: every protocol
adapter (the JSON routes, V2 REST, V2 gRPC, V1, MLflow) parses its request into these calls and
renders what they answer, nothing more. `DataPlane.infer` finds the model once, applies the text
rules, scores (off the event loop when the work is large), and observes the metrics, or raises the
service's own errors (src/errors.py).

The text rules (src/serving/text_rules.py) are the same for every protocol.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool

from src import API_VERSION, metrics, tracing
from src.errors import (
    ConflictError,
    ModelFailedError,
    ModelNotReadyError,
    ModelStoreError,
    ServiceError,
    UnknownModelError,
    UnknownVersionError,
)
from src.serving.explanation import Explanation
from src.serving.model_state import ModelState
from src.serving.prediction_log import PredictionLog
from src.serving.predictor import Prediction, Predictor
from src.serving.served_models import ServedModels
from src.serving.text_rules import Location, Locator, TextLimits, check_texts
from src.tenants.access import refuse
from src.tenants.feedback_tokens import FeedbackTokens
from src.tenants.keys import ANONYMOUS, Tenant

SERVER_NAME = "ml-service"
EXTENSIONS = ("binary_tensor_data",)  # the Open Inference Protocol's extensions this server speaks
PLATFORM = "scikit-learn"
INPUT_NAME = "text"
# A batch with more characters than this, or explained, is scored off the event loop, so health
# checks stay prompt.
INLINE_BATCH_CHARS = 50_000


def _json_text_location(index: int) -> Location:
    return ("body", "texts", index)


@dataclass(frozen=True)
class InferenceRequest:
    """What any protocol asks of a model: texts, which model (the default for None) and version, options.

    `locate` and `batch_loc` say where the protocol's request holds each text and the batch, so a
    broken rule names the field the client sent.
    """

    texts: Sequence[str]
    model: str | None = None
    version: str | None = None
    explain: bool = False
    top_terms: int = 10
    locate: Locator = field(default=_json_text_location)
    batch_loc: Location = ("body", "texts")
    # What keeps a client on one version during a canary (ROLLOUT_KEY_HEADER; "" without: split per request); asked
    # only while a canary runs, so a request pays nothing for it otherwise.
    client_key: Callable[[], str] = field(default=lambda: "")
    request_id: str = ""  # the request's X-Request-ID: in its prediction record and feedback tokens
    protocol: str = "json"  # the adapter's name (json, v2, grpc, v1, mlflow): in prediction records and metrics
    feedback: bool = True  # the protocol can carry feedback tokens back (V1 and MLflow cannot)
    tenant: Tenant | None = None  # the API key's tenant (None: keys are off); it may use only its models
    route: str = ""  # the route (or gRPC method), for the audit line of a refusal


@dataclass
class Inference:
    """The answer for a request's texts, in order: one Prediction each (probabilities in class order).

    Made by one request and read by its adapter; the data plane adds the feedback tokens in place."""

    model_name: str
    model_version: str
    classes: list[str]
    predictions: list[Prediction]
    explanations: list[Explanation] | None = None
    output: str = "probabilities"  # or "scores", for a model without probabilities
    output_labels: list[str] = field(default_factory=list)  # the class of each probability or score
    scoring_seconds: float = 0.0  # the model's own time on the texts (what a rollout's latency guard compares)
    feedback_tokens: list[str] | None = None  # one per text, while feedback is on and the key may give it
    rollout_arm: str | None = None  # during a rollout: which version answered (current or candidate)


@dataclass(frozen=True)
class ServerMetadata:
    """The server's name, version and protocol extensions."""

    name: str = SERVER_NAME
    version: str = API_VERSION
    extensions: tuple[str, ...] = EXTENSIONS


@dataclass(frozen=True)
class ModelIndexEntry:
    """One model in the repository index: READY (loaded and verified), LOADING or UNAVAILABLE (and why)."""

    name: str
    version: str
    state: str
    reason: str


@dataclass(frozen=True)
class ModelReport:
    """One model's state in this worker, as /health and /models show it: its version, or why none serves."""

    name: str
    default: bool
    required: bool
    version: str | None
    classes: list[str]
    engine: str | None
    reason: str | None

    @property
    def ready(self) -> bool:
        return self.version is not None


@dataclass(frozen=True)
class ModelMetadata:
    """What a model takes and gives, as every protocol describes it.

    One BYTES input `text` of shape [-1]; outputs `label` (BYTES, [-1]) and `output` (FP32, [-1,
    len(output_labels)]): the probability, or the decision score, of each of `output_labels`."""

    name: str
    versions: list[str]  # CURRENT's, then a running rollout's candidate
    classes: list[str]
    engine: str
    output: str  # "probabilities" or "scores"
    output_labels: list[str]
    platform: str = PLATFORM
    input: str = INPUT_NAME


def output_labels(predictor: Predictor) -> list[str]:
    """The class of each column of the model's FP32 output (its metadata, on every protocol)."""
    return predictor.classes if predictor.has_probabilities else predictor.score_labels


class DataPlane:
    """Every protocol's questions, answered once: metadata, health, readiness and inference."""

    def __init__(
        self,
        models: ServedModels,
        limits: TextLimits,
        log: PredictionLog | None = None,
        tokens: FeedbackTokens | None = None,
    ) -> None:
        self.models = models
        self.limits = limits
        self.log = log
        self.tokens = tokens

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

    async def infer(self, request: InferenceRequest) -> Inference:
        """Score a request's texts: UnknownModelError (404), ModelNotReadyError (503), InvalidInputError (422).

        During a rollout (src/serving/rollout_traffic.py) a request naming no version may be answered
        by the candidate (canary) or also scored by it after the answer (shadow). The texts CURRENT
        answers join its drift window; with a prediction log, every request leaves a record.
        """
        log = self.log
        started = time.perf_counter()
        try:
            state = self.model(request.model, request.tenant, request.route)
            # Counted from before any wait for its load: another model's load finishing meanwhile must not
            # unload the one this request waited for (it would answer 503 for nothing).
            state.in_flight += 1
            try:
                if self.models.lazy:
                    await self.models.ensure_loaded(state)  # a model served lazily loads on its first request
                predictor = self.serving(state, request.version)
                with tracing.child("score"):
                    inference = await self._infer(request, state, predictor)
            finally:
                state.in_flight -= 1
        except Exception as error:
            metrics.labelled(metrics.INFERENCE_REQUESTS, request.protocol, "error").inc()
            if log is not None:
                self._log_failure(log, request, error, time.perf_counter() - started)
            raise
        metrics.labelled(metrics.INFERENCE_REQUESTS, request.protocol, "ok").inc()
        if tracing.recording():  # the attributes are built only for a sampled request
            tracing.annotate(_span_attributes(request, inference))
        window = state.drift
        if window is not None and window.version == inference.model_version:
            window.record(inference.predictions, None if request.tenant is None else request.tenant.id)
        if log is not None:
            with tracing.child("prediction_log"):
                self._record(log, request, inference, time.perf_counter() - started)
        return inference

    def _record(self, log: PredictionLog, request: InferenceRequest, inference: Inference, seconds: float) -> None:
        """The request's prediction record, and its feedback tokens when the asker may give feedback."""
        tenant = request.tenant
        log.record(
            request.request_id,
            request.protocol,
            request.texts,
            seconds,
            model=inference.model_name,
            version=inference.model_version,
            predictions=inference.predictions,
            key=None if tenant is None else tenant.id,
        )
        if self.tokens is not None and request.feedback and (tenant is None or "feedback" in tenant.scopes):
            inference.feedback_tokens = self._tokens(request, inference)

    def _tokens(self, request: InferenceRequest, inference: Inference) -> list[str]:
        """A feedback token per text: only the key that asked can correct the answer, once."""
        assert self.tokens is not None
        key = ANONYMOUS if request.tenant is None else request.tenant.id
        return self.tokens.issue_all(
            request.request_id, inference.model_name, inference.model_version, key, request.texts
        )

    def _log_failure(self, log: PredictionLog, request: InferenceRequest, error: Exception, seconds: float) -> None:
        state = self.models.models.get(request.model or self.models.default_name)
        version = request.version or (state.predictor.version if state and state.predictor else None)
        if isinstance(error, ServiceError):
            status, message = error.status_code, error.message
        else:
            status, message = 500, f"internal error ({type(error).__name__})"
        log.record(
            request.request_id,
            request.protocol,
            request.texts,
            seconds,
            model=state.name if state else None,
            version=version,
            status=status,
            error=message,
            key=None if request.tenant is None else request.tenant.id,
        )

    async def _infer(self, request: InferenceRequest, state: ModelState, predictor: Predictor) -> Inference:
        name, texts = state.name, request.texts
        check_texts(texts, self.limits, request.locate, request.batch_loc)
        traffic = state.traffic if request.version is None else None
        if traffic is None:
            return await _run(name, predictor, request)
        if traffic.answers(request.client_key):
            try:
                inference = await _run(name, traffic.candidate, request)
                inference.rollout_arm = "candidate"
            except ModelFailedError as error:  # the candidate failed on a text: counted, and CURRENT answers
                traffic.record_error(len(texts), error)
            else:
                traffic.record_candidate(len(texts), inference.scoring_seconds)
                traffic.submit(traffic.check, predictor, texts, inference.predictions, inference.scoring_seconds)
                return inference
        inference = await _run(name, predictor, request)
        inference.rollout_arm = "current"
        traffic.record_current(predictor.version, len(texts), inference.scoring_seconds)
        if traffic.shadows():
            traffic.submit(traffic.shadow, texts, inference.predictions, inference.scoring_seconds)
        return inference


def _span_attributes(request: InferenceRequest, inference: Inference) -> dict[str, str | int]:
    """What a request's trace span says of it (src/tracing.py)."""
    attributes: dict[str, str | int] = {
        tracing.MODEL_NAME: inference.model_name,
        tracing.MODEL_VERSION: inference.model_version,
        tracing.BATCH_SIZE: len(request.texts),
        tracing.PROTOCOL: request.protocol,
        tracing.REQUEST_ID: request.request_id,
    }
    if inference.rollout_arm is not None:
        attributes[tracing.ROLLOUT_ARM] = inference.rollout_arm
    return attributes


async def _run(name: str, predictor: Predictor, request: InferenceRequest) -> Inference:
    """Score in the event loop when the work is small, in a worker thread when it is not."""
    if request.explain or sum(map(len, request.texts)) > INLINE_BATCH_CHARS:
        return await run_in_threadpool(_score, name, predictor, request)
    return _score(name, predictor, request)


def _score(name: str, predictor: Predictor, request: InferenceRequest) -> Inference:
    explanations = None
    started = time.perf_counter()
    try:
        if request.explain:
            explained = [predictor.predict_explained(text, request.top_terms, name=name) for text in request.texts]
            predictions = [prediction for prediction, _ in explained]
            explanations = [explanation for _, explanation in explained]
        else:
            predictions = predictor.predict_batch(request.texts)
    except ServiceError:
        raise
    except Exception as error:  # a model that raises on some texts: the first such text is named
        raise _failure(name, predictor, request, error) from None
    elapsed = time.perf_counter() - started
    _observe(name, predictions)
    return Inference(
        name,
        predictor.version,
        predictor.classes,
        predictions,
        explanations,
        predictor.output,
        output_labels(predictor),
        elapsed,
    )


def _failure(name: str, predictor: Predictor, request: InferenceRequest, error: Exception) -> ModelFailedError:
    """The error for a batch the model raised on: at the first text it raises on alone (the batch
    when none does)."""
    for index, text in enumerate(request.texts):
        try:
            predictor.predict_batch([text])
        except Exception as alone:
            return ModelFailedError(name, predictor.version, alone, loc=request.locate(index))
    return ModelFailedError(name, predictor.version, error, loc=request.batch_loc)


def _observe(model: str, predictions: Sequence[Prediction]) -> None:
    confidence = metrics.labelled(metrics.CONFIDENCE, model)
    tokens = metrics.labelled(metrics.INPUT_TOKENS, model)
    oov = metrics.labelled(metrics.INPUT_OOV_RATIO, model)
    for prediction in predictions:
        metrics.labelled(metrics.PREDICTIONS, model, prediction.label).inc()
        if prediction.confidence is not None:
            confidence.observe(prediction.confidence)
        tokens.observe(prediction.tokens)
        oov.observe(prediction.oov_rate)
