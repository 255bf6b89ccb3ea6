"""KServe's V1 protocol, a thin adapter over the data plane: what KServe's scikit-learn runtime and
TensorFlow Serving's REST API answer, so their clients (KServe's `InferenceRESTClient` with protocol
v1 among them) work unchanged.

- `GET /v1/models`: `{"models": [names]}`, the models the API key may use.
- `GET /v1/models/{name}`: `{"name": ..., "ready": true}` (200), or `"ready": false` (503, Retry-After).
- `POST /v1/models/{name}:predict` with `{"instances": [...]}`, each instance a text or an object with a
  `text` field: `{"predictions": [labels]}`, as KServe's scikit-learn runtime answers with `predict`.
  With `"parameters": {"probabilities": true}` each prediction is the list of the model's
  probabilities (decision scores, for a model without them) in the order of `"output_labels"`, which
  the answer then carries, as that runtime answers with `predict_proba`.

Errors are `{"error": "..."}` as KServe's model server writes them: 400 for a malformed request or a
broken text rule, 404 for an unknown model, 503 while it is not loaded.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from src import tracing
from src.api.deps import DataPlaneDep, infer, inference_request, route, tenant
from src.api.error_responses import V2_ERRORS, not_ready
from src.api.request_bodies import json_object, texts_of_rows
from src.api.routing import policy
from src.documents import encode_json
from src.errors import BadRequestError, quoted
from src.serving.dataplane import DataPlane
from src.serving.inference import Inference

router = APIRouter(prefix="/v1", tags=["v1 protocol"])
ERRORS = V2_ERRORS.name  # KServe's model server answers V1 errors as V2's: {"error": "..."}
INSTANCES = "instances"
PARAMETERS = "parameters"
PROBABILITIES = "probabilities"
_NAME = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]


def _probabilities_asked(body: dict[str, Any]) -> bool:
    unknown = set(body) - {INSTANCES, PARAMETERS}
    if unknown:
        raise BadRequestError(
            f"unknown field {quoted(sorted(unknown)[0])}; a V1 request holds instances (and parameters)"
        )
    parameters = body.get(PARAMETERS, {})
    if not isinstance(parameters, dict) or set(parameters) - {PROBABILITIES}:
        raise BadRequestError(f"parameters may hold only {PROBABILITIES!r} (true or false)")
    asked = parameters.get(PROBABILITIES, False)
    if not isinstance(asked, bool):
        raise BadRequestError(f"parameters.{PROBABILITIES} must be true or false")
    return asked


def _rendered(inference: Inference, probabilities: bool) -> dict[str, Any]:
    if not probabilities:
        return {"predictions": [prediction.label for prediction in inference.predictions]}
    labels = inference.output_labels
    rows = []
    for prediction in inference.predictions:
        values = prediction.probabilities if prediction.probabilities is not None else prediction.scores
        assert values is not None
        rows.append([values[label] for label in labels])
    return {"predictions": rows, "output_labels": labels}


async def predict(request: Request) -> Response:
    """Classify the instances: each a text, or an object with a `text` field."""
    plane: DataPlane = request.app.state.data_plane
    raw = await request.body()
    with tracing.child("parse"):
        body = json_object(raw, "the V1 request")
        if INSTANCES not in body:
            raise BadRequestError("a V1 request needs 'instances': a list of texts, or of objects with a 'text' field")
        probabilities = _probabilities_asked(body)
        texts = texts_of_rows(body[INSTANCES], plane.limits, (INSTANCES,))
    asked = inference_request(request, texts, model=request.path_params["name"], protocol="v1", feedback=False)
    inference = await infer(plane, asked, lambda index: (INSTANCES, index), (INSTANCES,))
    content = encode_json(_rendered(inference, probabilities))
    return Response(content, media_type="application/json")


# Before GET /v1/models/{name}: a name matches anything without a slash, `sentiment:predict` too.
router.add_api_route(
    "/models/{name}:predict",
    predict,
    methods=["POST"],
    summary="Predict (V1)",
    openapi_extra=policy(scope="predict", shed=True, errors=ERRORS, direct=True, parameters=_NAME),
)


@router.get("/models", summary="The served models (V1)", openapi_extra=policy(scope="read", errors=ERRORS))
async def list_models(plane: DataPlaneDep, request: Request) -> dict[str, list[str]]:
    """The names of the models the API key may use."""
    return {"models": plane.visible(tenant(request))}


@router.get("/models/{name}", summary="Model readiness (V1)", openapi_extra=policy(scope="read", errors=ERRORS))
async def model_ready(plane: DataPlaneDep, request: Request, name: str) -> Response:
    """`{"name": ..., "ready": true}` (200) when the model is loaded and verified, `"ready": false`
    (503, as KServe answers) when not, 404 for an unknown model (or one the key may not use)."""
    if plane.model_ready(name, None, tenant(request), route(request)):
        return JSONResponse({"name": name, "ready": True})
    return not_ready({"name": name, "ready": False})
