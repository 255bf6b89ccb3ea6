"""The data plane: a prediction's whole work but HTTP, one call per request for every protocol.

An adapter (the JSON routes, V2 REST) parses its protocol into an InferenceRequest and renders the
Inference it gets back; in between, `DataPlane.infer` resolves the model once, applies the text
rules (src/serving/text_rules.py), scores (off the event loop when the work is large), and observes
the metrics, or raises the service's own errors (src/errors.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool

from src import metrics
from src.serving.explanation import Explanation
from src.serving.predictor import Prediction, Predictor
from src.serving.served_models import ServedModels
from src.serving.text_rules import Location, Locator, TextLimits, check_texts

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


@dataclass(frozen=True)
class Inference:
    """The answer for a request's texts, in order: one Prediction each (probabilities in class order)."""

    model_name: str
    model_version: str
    classes: list[str]
    predictions: list[Prediction]
    explanations: list[Explanation] | None = None


class DataPlane:
    """Resolves the model, applies the text rules, scores and observes: everything a route does but HTTP."""

    def __init__(self, models: ServedModels, limits: TextLimits) -> None:
        self.models = models
        self.limits = limits

    async def infer(self, request: InferenceRequest) -> Inference:
        """Score a request's texts: UnknownModelError (404), ModelNotReadyError (503), InvalidInputError (422)."""
        state = self.models.get(request.model)
        predictor = state.require(request.version)
        texts = request.texts
        check_texts(texts, self.limits, request.locate, request.batch_loc)
        if request.explain or sum(map(len, texts)) > INLINE_BATCH_CHARS:
            return await run_in_threadpool(_score, state.name, predictor, request)
        return _score(state.name, predictor, request)


def _score(name: str, predictor: Predictor, request: InferenceRequest) -> Inference:
    explanations = None
    if request.explain:
        explained = [predictor.predict_explained(text, request.top_terms, name=name) for text in request.texts]
        predictions = [prediction for prediction, _ in explained]
        explanations = [explanation for _, explanation in explained]
    else:
        predictions = predictor.predict_batch(request.texts)
    _observe(name, predictions)
    return Inference(name, predictor.version, predictor.classes, predictions, explanations)


def _observe(model: str, predictions: Sequence[Prediction]) -> None:
    confidence = metrics.labelled(metrics.CONFIDENCE, model)
    tokens = metrics.labelled(metrics.INPUT_TOKENS, model)
    oov = metrics.labelled(metrics.INPUT_OOV_RATIO, model)
    for prediction in predictions:
        metrics.labelled(metrics.PREDICTIONS, model, prediction.label).inc()
        confidence.observe(prediction.confidence)
        tokens.observe(prediction.tokens)
        oov.observe(prediction.oov_rate)
