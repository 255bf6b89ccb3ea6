"""Predictions: one text, or a batch of texts, by the default model or by a model named in the path.

These two routes are the hot path, so they take the raw Request and return a ready Response: the
body is validated by pydantic-core straight from bytes, and no FastAPI dependency or response-model
pass runs per request. The OpenAPI contract is still declared from the same schema classes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from src import tracing
from src.api.deps import infer, inference_request
from src.api.messages import JSONAnswer
from src.api.routing import policy
from src.api.schemas import BatchPredictRequest, BatchPredictResponse, ErrorResponse, PredictRequest, PredictResponse
from src.serving.dataplane import DataPlane
from src.serving.inference import Inference
from src.serving.text_rules import Location

router = APIRouter(
    tags=["predict"],
    responses={
        401: {"model": ErrorResponse, "description": "API keys are on (API_KEYS) and X-API-Key is missing"},
        403: {"model": ErrorResponse, "description": "The X-API-Key is not valid, or may not use this model"},
        413: {"model": ErrorResponse, "description": "Body larger than MAX_BODY_BYTES"},
        415: {"model": ErrorResponse, "description": "Body not declared as application/json"},
        422: {"model": ErrorResponse, "description": "Invalid JSON, or a field breaks a rule; `detail` names it"},
        429: {"model": ErrorResponse, "description": "The key is over its rate; retry after Retry-After"},
        503: {"model": ErrorResponse, "description": "No model loaded yet, or overloaded; retry after Retry-After"},
    },
)

_MODEL_NAME_PARAMETER = {
    "name": "name",
    "in": "path",
    "required": True,
    "description": "the model's name, as `GET /models` lists it",
    "schema": {"type": "string"},
}


RequestModel = TypeVar("RequestModel", bound=BaseModel)


_VERSION_PARAMETER = {
    "name": "version",
    "in": "path",
    "required": True,
    "description": "a loaded version: CURRENT's, or a running rollout's candidate (`GET /models/{name}/rollout`)",
    "schema": {"type": "string"},
}


def _body_schema(model: type[BaseModel], *, named: bool = False, versioned: bool = False) -> dict[str, Any]:
    schema = {"schema": model.model_json_schema()}
    extra: dict[str, Any] = {"requestBody": {"required": True, "content": {"application/json": schema}}}
    if named:
        extra["parameters"] = [_MODEL_NAME_PARAMETER, *([_VERSION_PARAMETER] if versioned else [])]
    return policy(scope="predict", shed=True, direct=True, **extra)


async def _parse(request: Request, model: type[RequestModel]) -> RequestModel:
    body = await request.body()
    try:
        with tracing.child("parse"):
            return model.model_validate_json(body)
    except ValidationError as error:
        errors = error.errors(include_url=False, include_input=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


def _results(inference: Inference) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = [
        {"label": p.label, "probabilities": p.probabilities}
        if p.probabilities is not None
        else {"label": p.label, "scores": p.scores}
        for p in inference.predictions
    ]
    for result, explanation in zip(results, inference.explanations or (), strict=False):
        result["explanation"] = asdict(explanation)
    for result, token in zip(results, inference.feedback_tokens or (), strict=False):
        result["feedback_token"] = token
    return results


_ONE_TEXT: Location = ("body", "text")
_BATCH: Location = ("body", "texts")


def _one_text(_: int) -> Location:
    return _ONE_TEXT


def _batch_text(index: int) -> Location:
    return (*_BATCH, index)


async def predict(request: Request) -> Response:
    """The label, the probability of each class, and the model version."""
    body = await _parse(request, PredictRequest)
    plane: DataPlane = request.app.state.data_plane
    asked = inference_request(
        request,
        [body.text],
        model=request.path_params.get("name"),
        version=request.path_params.get("version"),
        explain=body.explain,
        top_terms=body.top_terms,
    )
    inference = await infer(plane, asked, _one_text, _ONE_TEXT)
    tokens = inference.feedback_tokens
    headers = {"X-Feedback-Token": tokens[0]} if tokens else None
    return JSONAnswer({**_results(inference)[0], "model_version": inference.model_version}, headers)


async def predict_batch(request: Request) -> Response:
    """One result per text, in the order sent."""
    body = await _parse(request, BatchPredictRequest)
    plane: DataPlane = request.app.state.data_plane
    asked = inference_request(
        request,
        body.texts,
        model=request.path_params.get("name"),
        version=request.path_params.get("version"),
        explain=body.explain,
        top_terms=body.top_terms,
    )
    inference = await infer(plane, asked, _batch_text, _BATCH)
    return JSONAnswer({"predictions": _results(inference), "model_version": inference.model_version})


_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No model of that name is served"}
}
# (path, handler, request, response, summary): the default model's routes and every model's by name.
_ROUTES: list[tuple[str, Callable[[Request], Awaitable[Response]], type[BaseModel], type[BaseModel], str]] = [
    ("/predict", predict, PredictRequest, PredictResponse, "Classify one text"),
    ("/predict/batch", predict_batch, BatchPredictRequest, BatchPredictResponse, "Classify many texts"),
]
_SCOPES = [
    ("", "(default model)", False, False),
    ("/models/{name}", "with a named model", True, False),
    (
        "/models/{name}/versions/{version}",
        "with one loaded version of a named model (CURRENT's, or a rollout's candidate)",
        True,
        True,
    ),
]
for path, handler, request_model, response_model, summary in _ROUTES:
    # The default model's route, every model's by name, and one loaded version of a model by name.
    for prefix, scope, named, versioned in _SCOPES:
        router.add_api_route(
            f"{prefix}{path}",
            handler,
            methods=["POST"],
            summary=f"{summary} {scope}",
            response_model=response_model,
            responses=_NOT_FOUND if named else None,
            openapi_extra=_body_schema(request_model, named=named, versioned=versioned),
        )
