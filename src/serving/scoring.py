"""Scoring a request's texts with a model: in the event loop when the work is small, in a worker
thread when it is not; during a rollout, with the version the rollout picks (src/serving/rollout_traffic.py).

A model that raises on a batch is asked text by text, so the error names the first text it cannot
score (ModelFailedError with its index), never a bare 500.
"""

from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool

from src.errors import ModelFailedError, ServiceError
from src.serving.inference import Inference, InferenceRequest, output_labels
from src.serving.model_state import ModelState
from src.serving.predictor import Predictor

# A batch with more characters than this, or explained, is scored off the event loop, so health
# checks stay prompt.
INLINE_BATCH_CHARS = 50_000


async def answer(request: InferenceRequest, state: ModelState, predictor: Predictor) -> Inference:
    """The request's answer: by CURRENT (or the version named), or, during a rollout, by the arm it picks.

    A canary's candidate answers its share of requests (CURRENT takes over for a text it fails on); a
    shadow's candidate scores CURRENT's texts after the answer, off the request's path."""
    name, texts = state.name, request.texts
    traffic = state.traffic if request.version is None else None
    if traffic is None:
        return await score(name, predictor, request)
    if traffic.answers(request.client_key):
        try:
            inference = await score(name, traffic.candidate, request)
            inference.rollout_arm = "candidate"
        except ModelFailedError as error:  # the candidate failed on a text: counted, and CURRENT answers
            traffic.record_error(len(texts), error)
        else:
            traffic.record_candidate(len(texts), inference.scoring_seconds)
            traffic.submit(traffic.check, predictor, texts, inference.predictions, inference.scoring_seconds)
            return inference
    inference = await score(name, predictor, request)
    inference.rollout_arm = "current"
    traffic.record_current(predictor.version, len(texts), inference.scoring_seconds)
    if traffic.shadows():
        traffic.submit(traffic.shadow, texts, inference.predictions, inference.scoring_seconds)
    return inference


async def score(name: str, predictor: Predictor, request: InferenceRequest) -> Inference:
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
    return Inference(
        name,
        predictor.version,
        predictor.classes,
        predictions,
        explanations,
        predictor.output,
        output_labels(predictor),
        time.perf_counter() - started,
    )


def _failure(name: str, predictor: Predictor, request: InferenceRequest, error: Exception) -> ModelFailedError:
    """The error for a batch the model raised on: at the first text it raises on alone (the batch
    when none does)."""
    for index, text in enumerate(request.texts):
        try:
            predictor.predict_batch([text])
        except Exception as alone:
            return ModelFailedError(name, predictor.version, alone, text_index=index)
    return ModelFailedError(name, predictor.version, error)
