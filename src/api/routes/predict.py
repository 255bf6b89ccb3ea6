"""Predictions: one text, or a batch of texts.

These two routes are the hot path, so they take the raw Request and return a ready Response: the
body is validated by pydantic-core straight from bytes, and no FastAPI dependency or response-model
pass runs per request. The OpenAPI contract is still declared from the same schema classes.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from src.api import metrics
from src.api.model_state import ModelState
from src.api.schemas import BatchPredictRequest, BatchPredictResponse, ErrorResponse, PredictRequest, PredictResponse
from src.config import Settings
from src.errors import InvalidInputError, UnsupportedMediaTypeError
from src.model.predictor import Prediction, Predictor

router = APIRouter(
    tags=["predict"],
    responses={
        401: {"model": ErrorResponse, "description": "API keys are on (API_KEYS) and X-API-Key is missing"},
        403: {"model": ErrorResponse, "description": "The X-API-Key is not valid"},
        413: {"model": ErrorResponse, "description": "Body larger than MAX_BODY_BYTES"},
        415: {"model": ErrorResponse, "description": "Body not declared as application/json"},
        422: {"model": ErrorResponse, "description": "Invalid JSON, or a field breaks a rule; `detail` names it"},
        503: {"model": ErrorResponse, "description": "No model loaded yet, or overloaded; retry after Retry-After"},
    },
)

PREDICTION_PATHS = ("/predict", "/predict/batch")

# A batch with more characters than this, or explained, is scored off the event loop, so health checks
# stay prompt.
_INLINE_BATCH_CHARS = 50_000
# How much longer than MAX_TEXT_LENGTH a text may become under NFKD (Hangul syllables become 2-3 letters).
NORMALISED_LENGTH_FACTOR = 3

RequestModel = TypeVar("RequestModel", bound=BaseModel)


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = {"schema": model.model_json_schema()}
    return {"requestBody": {"required": True, "content": {"application/json": schema}}}


async def _parse(request: Request, model: type[RequestModel]) -> RequestModel:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        raise UnsupportedMediaTypeError(f"Content-Type must be application/json, not {content_type or 'missing'}")
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as error:
        errors = error.errors(include_url=False, include_input=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


def _check_length(text: str, settings: Settings, loc: tuple[str | int, ...]) -> None:
    if len(text) > settings.max_text_length:
        raise InvalidInputError(
            f"text has {len(text)} characters; the limit is {settings.max_text_length} (MAX_TEXT_LENGTH)", loc=loc
        )
    # The model strips accents through NFKD normalisation, and scoring costs what the normalised
    # text's length costs: 20,000 x U+FDFA become 360,000 characters (72 ms on the event loop,
    # against 1-5 ms for other texts of 20,000 characters). Bound that length too.
    if not text.isascii():
        expanded = len(unicodedata.normalize("NFKD", text))
        limit = NORMALISED_LENGTH_FACTOR * settings.max_text_length
        if expanded > limit:
            raise InvalidInputError(
                f"text expands to {expanded} characters under Unicode normalisation (NFKD); the limit is "
                f"{limit} ({NORMALISED_LENGTH_FACTOR} x MAX_TEXT_LENGTH)",
                loc=loc,
            )


def _observe(predictions: Sequence[Prediction]) -> None:
    for prediction in predictions:
        metrics.labelled(metrics.PREDICTIONS, prediction.label).inc()
        metrics.CONFIDENCE.observe(prediction.confidence)
        metrics.INPUT_TOKENS.observe(prediction.tokens)
        metrics.INPUT_OOV_RATIO.observe(prediction.oov_rate)


def _score(predictor: Predictor, texts: Sequence[str], explain: bool, top_terms: int) -> list[dict[str, Any]]:
    """One result per text, observed in the metrics; an explained text is weighed once for both."""
    if explain:
        explained = [predictor.predict_explained(text, top_terms) for text in texts]
        predictions = [prediction for prediction, _ in explained]
        extras = [{"explanation": asdict(explanation)} for _, explanation in explained]
    else:
        predictions = predictor.predict_batch(texts)
        extras = [{} for _ in predictions]
    _observe(predictions)
    return [
        {"label": p.label, "probabilities": p.probabilities, **extra}
        for p, extra in zip(predictions, extras, strict=True)
    ]


def _json(content: dict[str, Any]) -> Response:
    return Response(json.dumps(content, separators=(",", ":")), media_type="application/json")


@router.post(
    "/predict", summary="Classify one text", response_model=PredictResponse, openapi_extra=_body_schema(PredictRequest)
)
async def predict(request: Request) -> Response:
    """The label, the probability of each class, and the model version."""
    body = await _parse(request, PredictRequest)
    settings: Settings = request.app.state.settings
    _check_length(body.text, settings, ("body", "text"))
    state: ModelState = request.app.state.model_state
    predictor = state.require()
    (result,) = _score(predictor, [body.text], body.explain, body.top_terms)
    return _json({**result, "model_version": predictor.version})


@router.post(
    "/predict/batch",
    summary="Classify many texts",
    response_model=BatchPredictResponse,
    openapi_extra=_body_schema(BatchPredictRequest),
)
async def predict_batch(request: Request) -> Response:
    """One result per text, in the order sent."""
    body = await _parse(request, BatchPredictRequest)
    texts = body.texts
    settings: Settings = request.app.state.settings
    if len(texts) > settings.max_batch_size:
        raise InvalidInputError(
            f"batch has {len(texts)} texts; the limit is {settings.max_batch_size} (MAX_BATCH_SIZE)",
            loc=("body", "texts"),
        )
    for index, text in enumerate(texts):
        _check_length(text, settings, ("body", "texts", index))
    state: ModelState = request.app.state.model_state
    predictor = state.require()
    if body.explain or sum(map(len, texts)) > _INLINE_BATCH_CHARS:
        results = await run_in_threadpool(_score, predictor, texts, body.explain, body.top_terms)
    else:
        results = _score(predictor, texts, body.explain, body.top_terms)
    return _json({"predictions": results, "model_version": predictor.version})


# Served by DirectRoutesMiddleware without FastAPI's per-request machinery (see src/api/direct_routes.py).
DIRECT_ROUTES = {("POST", "/predict"): predict, ("POST", "/predict/batch"): predict_batch}
