"""The data plane: the per-request work of a prediction, with no HTTP in it.

Given a model name (optionally a version), texts and options it finds the model, checks the limits,
scores (off the event loop when the work is large), observes the metrics and returns plain results,
or raises the service's own errors.
Routes are thin adapters that parse a protocol's request and render these results (MLServer's
handlers/dataplane.py is the model).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from src import metrics
from src.config import Settings
from src.errors import InvalidInputError
from src.serving.predictor import Prediction, Predictor
from src.serving.served_models import ServedModels

# A batch with more characters than this, or explained, is scored off the event loop, so health
# checks stay prompt.
INLINE_BATCH_CHARS = 50_000
# How much longer than MAX_TEXT_LENGTH a text may become under NFKD (Hangul syllables become 2-3 letters).
NORMALISED_LENGTH_FACTOR = 3

# Where a protocol says an invalid text sits in its request, from the text's index.
Locator = Callable[[int], tuple[str | int, ...]]


@dataclass(frozen=True)
class Inference:
    """The results for a request's texts, in order, and the model (version, classes) that made them."""

    model_name: str
    model_version: str
    classes: list[str]
    results: list[dict[str, Any]]


class DataPlane:
    """Finds the model, checks limits, scores and observes: everything a route does but HTTP."""

    def __init__(self, models: ServedModels, settings: Settings) -> None:
        self.models = models
        self.settings = settings

    def check_texts(self, texts: Sequence[str], locate: Locator, batch_loc: tuple[str | int, ...]) -> None:
        """InvalidInputError, naming where, for a batch over MAX_BATCH_SIZE or a text over the length limits."""
        limit = self.settings.max_batch_size
        if len(texts) > limit:
            raise InvalidInputError(
                f"batch has {len(texts)} texts; the limit is {limit} (MAX_BATCH_SIZE)", loc=batch_loc
            )
        for index, text in enumerate(texts):
            self._check_length(text, locate, index)

    def _check_length(self, text: str, locate: Locator, index: int) -> None:
        longest = self.settings.max_text_length
        if len(text) > longest:
            raise InvalidInputError(
                f"text has {len(text)} characters; the limit is {longest} (MAX_TEXT_LENGTH)", loc=locate(index)
            )
        # The model strips accents through NFKD normalisation, and scoring costs what the normalised
        # text's length costs: 20,000 x U+FDFA become 360,000 characters (72 ms on the event loop,
        # against 1-5 ms for other texts of 20,000 characters). Bound that length too.
        if not text.isascii():
            expanded = len(unicodedata.normalize("NFKD", text))
            limit = NORMALISED_LENGTH_FACTOR * longest
            if expanded > limit:
                raise InvalidInputError(
                    f"text expands to {expanded} characters under Unicode normalisation (NFKD); the limit is "
                    f"{limit} ({NORMALISED_LENGTH_FACTOR} x MAX_TEXT_LENGTH)",
                    loc=locate(index),
                )

    def predictor(self, model: str | None = None, version: str | None = None) -> Predictor:
        """The predictor serving a model (the default one for None): 404 if unknown, 503 if not loaded."""
        return self.models.require(model, version)

    async def infer(
        self,
        texts: Sequence[str],
        *,
        model: str | None = None,
        version: str | None = None,
        explain: bool = False,
        top_terms: int = 10,
    ) -> Inference:
        """Score checked texts with a model (the default one for None), and that version if one is named."""
        name = model or self.models.default_name
        predictor = self.models.require(name, version)
        if explain or sum(map(len, texts)) > INLINE_BATCH_CHARS:
            results = await run_in_threadpool(score, predictor, texts, explain, top_terms, name)
        else:
            results = score(predictor, texts, explain, top_terms, name)
        return Inference(name, predictor.version, predictor.classes, results)


def _observe(model: str, predictions: Sequence[Prediction]) -> None:
    confidence = metrics.labelled(metrics.CONFIDENCE, model)
    tokens = metrics.labelled(metrics.INPUT_TOKENS, model)
    oov = metrics.labelled(metrics.INPUT_OOV_RATIO, model)
    for prediction in predictions:
        metrics.labelled(metrics.PREDICTIONS, model, prediction.label).inc()
        confidence.observe(prediction.confidence)
        tokens.observe(prediction.tokens)
        oov.observe(prediction.oov_rate)


def score(
    predictor: Predictor, texts: Sequence[str], explain: bool, top_terms: int, model: str
) -> list[dict[str, Any]]:
    """One result per text, observed in the metrics under `model`; an explained text is weighed once for both."""
    if explain:
        explained = [predictor.predict_explained(text, top_terms) for text in texts]
        predictions = [prediction for prediction, _ in explained]
        extras: list[dict[str, Any]] = [{"explanation": asdict(explanation)} for _, explanation in explained]
    else:
        predictions = predictor.predict_batch(texts)
        extras = [{} for _ in predictions]
    _observe(model, predictions)
    return [
        {"label": p.label, "probabilities": p.probabilities, **extra}
        for p, extra in zip(predictions, extras, strict=True)
    ]
