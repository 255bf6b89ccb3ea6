"""Predictions: one text, or a batch of texts.

These two routes are the hot path, so they take the raw Request and return a ready Response: the
body is validated by pydantic-core straight from bytes, and no FastAPI dependency or response-model
pass runs per request. The OpenAPI contract is still declared from the same schema classes.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from src.api.dataplane import DataPlane
from src.api.schemas import BatchPredictRequest, BatchPredictResponse, ErrorResponse, PredictRequest, PredictResponse
from src.errors import UnsupportedMediaTypeError

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


def _json(content: dict[str, Any]) -> Response:
    return Response(json.dumps(content, separators=(",", ":")), media_type="application/json")


@router.post(
    "/predict", summary="Classify one text", response_model=PredictResponse, openapi_extra=_body_schema(PredictRequest)
)
async def predict(request: Request) -> Response:
    """The label, the probability of each class, and the model version."""
    body = await _parse(request, PredictRequest)
    plane: DataPlane = request.app.state.data_plane
    plane.check_texts([body.text], lambda _: ("body", "text"), ("body", "text"))
    inference = await plane.infer([body.text], explain=body.explain, top_terms=body.top_terms)
    return _json({**inference.results[0], "model_version": inference.model_version})


@router.post(
    "/predict/batch",
    summary="Classify many texts",
    response_model=BatchPredictResponse,
    openapi_extra=_body_schema(BatchPredictRequest),
)
async def predict_batch(request: Request) -> Response:
    """One result per text, in the order sent."""
    body = await _parse(request, BatchPredictRequest)
    plane: DataPlane = request.app.state.data_plane
    plane.check_texts(body.texts, lambda index: ("body", "texts", index), ("body", "texts"))
    inference = await plane.infer(body.texts, explain=body.explain, top_terms=body.top_terms)
    return _json({"predictions": inference.results, "model_version": inference.model_version})


# Served by DirectRoutesMiddleware without FastAPI's per-request machinery (see src/api/direct_routes.py).
DIRECT_ROUTES = {("POST", "/predict"): predict, ("POST", "/predict/batch"): predict_batch}
