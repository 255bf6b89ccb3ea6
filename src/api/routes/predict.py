"""Predictions: one text, or a batch of texts."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from src.api import metrics
from src.api.deps import PredictorDep, SettingsDep, require_json
from src.api.schemas import (
    BatchPredictRequest,
    BatchPredictResponse,
    ErrorResponse,
    PredictionResult,
    PredictRequest,
    PredictResponse,
)
from src.config import Settings
from src.errors import InvalidInputError
from src.model.predictor import Prediction

router = APIRouter(
    tags=["predict"],
    dependencies=[Depends(require_json)],
    responses={
        413: {"model": ErrorResponse, "description": "Body larger than MAX_BODY_BYTES"},
        415: {"model": ErrorResponse, "description": "Body not declared as application/json"},
        422: {"model": ErrorResponse, "description": "A field breaks a rule; `detail` names it"},
        503: {"model": ErrorResponse, "description": "No model loaded yet; retry after Retry-After seconds"},
    },
)

# A batch with more characters than this is scored off the event loop, so health checks stay prompt.
_INLINE_BATCH_CHARS = 50_000


def _check_length(text: str, settings: Settings, loc: tuple[str | int, ...]) -> None:
    if len(text) > settings.max_text_length:
        raise InvalidInputError(
            f"text has {len(text)} characters; the limit is {settings.max_text_length} (MAX_TEXT_LENGTH)", loc=loc
        )


def _observe(predictions: Sequence[Prediction]) -> None:
    for prediction in predictions:
        metrics.PREDICTIONS.labels(prediction.label).inc()
        metrics.CONFIDENCE.observe(prediction.confidence)
        metrics.INPUT_TOKENS.observe(prediction.tokens)
        metrics.INPUT_OOV_RATIO.observe(prediction.oov_rate)


@router.post("/predict", summary="Classify one text")
async def predict(request: PredictRequest, predictor: PredictorDep, settings: SettingsDep) -> PredictResponse:
    """The label, the probability of each class, and the model version."""
    _check_length(request.text, settings, ("body", "text"))
    prediction = predictor.predict(request.text)
    _observe([prediction])
    return PredictResponse(
        label=prediction.label, probabilities=prediction.probabilities, model_version=predictor.version
    )


@router.post("/predict/batch", summary="Classify many texts")
async def predict_batch(
    request: BatchPredictRequest, predictor: PredictorDep, settings: SettingsDep
) -> BatchPredictResponse:
    """One result per text, in the order sent."""
    texts = request.texts
    if len(texts) > settings.max_batch_size:
        raise InvalidInputError(
            f"batch has {len(texts)} texts; the limit is {settings.max_batch_size} (MAX_BATCH_SIZE)",
            loc=("body", "texts"),
        )
    for index, text in enumerate(texts):
        _check_length(text, settings, ("body", "texts", index))
    if sum(map(len, texts)) > _INLINE_BATCH_CHARS:
        predictions = await run_in_threadpool(predictor.predict_batch, texts)
    else:
        predictions = predictor.predict_batch(texts)
    _observe(predictions)
    return BatchPredictResponse(
        predictions=[PredictionResult(label=p.label, probabilities=p.probabilities) for p in predictions],
        model_version=predictor.version,
    )
