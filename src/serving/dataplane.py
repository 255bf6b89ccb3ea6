"""The data plane: a prediction's whole work but HTTP, one call per request for every protocol.

An adapter (the JSON routes, V2 REST) parses its protocol into an InferenceRequest and renders the
Inference it gets back; in between, `DataPlane.infer` resolves the model once, applies the text
rules, scores (off the event loop when the work is large), and observes the metrics, or raises the
service's own errors (src/errors.py).

The text rules are the same for every protocol: a batch holds 1 to MAX_BATCH_SIZE texts; a text
has a non-blank character, at most MAX_TEXT_LENGTH characters, and at most NORMALISED_LENGTH_FACTOR
times that once Unicode NFKD expands it (the model strips accents through NFKD, so the expanded
length is what scoring costs: U+FDFA becomes 18 characters). A broken rule is an InvalidInputError
whose `loc` says where the protocol's request holds the text.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool

from src import metrics
from src.config import Settings
from src.errors import (
    InvalidInputError,
    ModelFailedError,
    ModelNotReadyError,
    ServiceError,
    UnknownModelError,
    UnknownVersionError,
)
from src.serving.explanation import Explanation
from src.serving.prediction_log import PredictionLog
from src.serving.predictor import Prediction, Predictor
from src.serving.served_models import ServedModels
from src.tenants.access import check_model
from src.tenants.feedback_tokens import FeedbackTokens
from src.tenants.keys import ANONYMOUS, Tenant

Location = tuple[str | int, ...]
# Where a protocol holds the i-th text of a request.
Locator = Callable[[int], Location]
# A batch with more characters than this, or explained, is scored off the event loop, so health
# checks stay prompt.
INLINE_BATCH_CHARS = 50_000


# A character that is white space neither to Python nor to JSON Schema (ECMA-262) regexes; the JSON
# schema publishes this pattern, so clients can check the rule before sending.
NON_BLANK = "[^\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
_NON_BLANK = re.compile(NON_BLANK)
NORMALISED_LENGTH_FACTOR = 3


@dataclass(frozen=True)
class TextLimits:
    """The configurable bounds of the rules."""

    max_text_length: int
    max_batch_size: int

    @classmethod
    def from_settings(cls, settings: Settings) -> TextLimits:
        """MAX_TEXT_LENGTH and MAX_BATCH_SIZE."""
        return cls(settings.max_text_length, settings.max_batch_size)


def check_batch_size(count: int, limits: TextLimits, loc: Location) -> None:
    """A batch of `count` texts must hold at least one and at most MAX_BATCH_SIZE."""
    if count < 1:
        raise InvalidInputError("at least one text is needed", loc=loc)
    if count > limits.max_batch_size:
        raise InvalidInputError(
            f"batch has {count} texts; the limit is {limits.max_batch_size} (MAX_BATCH_SIZE)", loc=loc
        )


def check_text(text: str, limits: TextLimits, loc: Location) -> None:
    """One text: not blank, not too long, not too long once normalised."""
    longest = limits.max_text_length
    if len(text) > longest:
        raise InvalidInputError(f"text has {len(text)} characters; the limit is {longest} (MAX_TEXT_LENGTH)", loc=loc)
    if not _NON_BLANK.search(text):
        raise InvalidInputError("text must contain at least one non-whitespace character", loc=loc)
    if not text.isascii():
        expanded = len(unicodedata.normalize("NFKD", text))
        limit = NORMALISED_LENGTH_FACTOR * longest
        if expanded > limit:
            raise InvalidInputError(
                f"text expands to {expanded} characters under Unicode normalisation (NFKD); the limit is "
                f"{limit} ({NORMALISED_LENGTH_FACTOR} x MAX_TEXT_LENGTH)",
                loc=loc,
            )


def check_texts(texts: Sequence[str], limits: TextLimits, locate: Locator, batch_loc: Location) -> None:
    """Every rule, for a request's texts in order; the first broken one is raised."""
    check_batch_size(len(texts), limits, batch_loc)
    for index, text in enumerate(texts):
        check_text(text, limits, locate(index))


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
    protocol: str = "json"  # the adapter's name (json, v2, grpc): in prediction records and metrics
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


class DataPlane:
    """Resolves the model, applies the text rules, scores and observes: everything a route does but HTTP."""

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

    def resolve(
        self, name: str | None = None, version: str | None = None, tenant: Tenant | None = None, route: str = ""
    ) -> tuple[str, Predictor]:
        """A model's name and serving predictor (that version, if named): the one place a request finds its model.

        UnknownModelError (404) for a model not served here (or not one of the key's models: no name
        outside them is confirmed), ForbiddenError (403) for a served model the key may not use,
        ModelNotReadyError (503) while it has no verified version, UnknownVersionError (404) when it
        serves another version than the one named.
        """
        state = self.models.models.get(self.models.default_name if name is None else name)
        if state is None:
            raise UnknownModelError(name or "", self.visible(tenant))
        check_model(tenant, state.name, route)
        predictor = state.predictor
        if predictor is None:
            raise ModelNotReadyError(state.name, state.not_ready_reason or "not loaded")
        if version is not None:
            chosen = state.predictor_for(version)
            if chosen is None:
                raise UnknownVersionError(state.name, version, ", ".join(state.loaded_versions))
            return state.name, chosen
        return state.name, predictor

    def visible(self, tenant: Tenant | None) -> list[str]:
        """The names of the models a key may see: its own (all of them with keys off)."""
        return [name for name in self.models.models if tenant is None or tenant.allows_model(name)]

    async def infer(self, request: InferenceRequest) -> Inference:
        """Score a request's texts: UnknownModelError (404), ModelNotReadyError (503), InvalidInputError (422).

        During a rollout (src/serving/rollout_traffic.py) a request naming no version may be answered
        by the candidate (canary) or also scored by it after the answer (shadow). The texts CURRENT
        answers join its drift window; with a prediction log, every request leaves a record.
        """
        log = self.log
        started = time.perf_counter()
        try:
            inference = await self._infer(request)
        except Exception as error:
            metrics.labelled(metrics.INFERENCE_REQUESTS, request.protocol, "error").inc()
            if log is not None:
                self._log_failure(log, request, error, time.perf_counter() - started)
            raise
        metrics.labelled(metrics.INFERENCE_REQUESTS, request.protocol, "ok").inc()
        window = self.models.models[inference.model_name].drift
        if window is not None and window.version == inference.model_version:
            window.record(inference.predictions, None if request.tenant is None else request.tenant.id)
        if log is not None:
            tenant = request.tenant
            log.record(
                request.request_id,
                request.protocol,
                request.texts,
                time.perf_counter() - started,
                model=inference.model_name,
                version=inference.model_version,
                predictions=inference.predictions,
                key=None if tenant is None else tenant.id,
            )
            if self.tokens is not None and (tenant is None or "feedback" in tenant.scopes):
                inference.feedback_tokens = self._tokens(request, inference)
        return inference

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

    async def _infer(self, request: InferenceRequest) -> Inference:
        name, predictor = self.resolve(request.model, request.version, request.tenant, request.route)
        texts = request.texts
        check_texts(texts, self.limits, request.locate, request.batch_loc)
        traffic = self.models.models[name].traffic if request.version is None else None
        if traffic is None:
            return await _run(name, predictor, request)
        if traffic.answers(request.client_key):
            try:
                inference = await _run(name, traffic.candidate, request)
            except ModelFailedError as error:  # the candidate failed on a text: counted, and CURRENT answers
                traffic.record_error(len(texts), error)
            else:
                traffic.record_candidate(len(texts), inference.scoring_seconds)
                traffic.submit(traffic.check, predictor, texts, inference.predictions, inference.scoring_seconds)
                return inference
        inference = await _run(name, predictor, request)
        traffic.record_current(predictor.version, len(texts), inference.scoring_seconds)
        if traffic.shadows():
            traffic.submit(traffic.shadow, texts, inference.predictions, inference.scoring_seconds)
        return inference


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
    labels = predictor.classes if predictor.has_probabilities else predictor.score_labels
    return Inference(
        name, predictor.version, predictor.classes, predictions, explanations, predictor.output, labels, elapsed
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
