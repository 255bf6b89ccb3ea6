"""The Open Inference Protocol (KServe V2) REST routes, thin adapters over the data plane.

Errors are `{"error": ...}` as the protocol says (src/api/error_responses.py): 400 for a malformed
request or a broken text rule, 404 for an unknown model or version, 503 while the model is not
loaded. Health answers carry the protocol's REST bodies (`{"live": true}`, `{"ready": ...}`, a
model's `{"name": ..., "ready": ...}`, as KServe's SDK reads them) and say the same by status: 200
is true, 400 is false. Every model the server serves is
a V2 model of the same name; a version named in the path must be the one serving now.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from src.api import API_VERSION
from src.api.deps import DataPlaneDep, ModelsDep, client_key, request_id, route, tenant
from src.api.error_responses import V2_ERRORS
from src.api.routing import policy
from src.api.v2.codec import (
    HEADER_LENGTH,
    SHAPE_LOCATION,
    TEXT_LOCATION,
    encode_infer_response,
    output_labels,
    parse_infer_request,
)
from src.errors import ModelNotReadyError
from src.serving.dataplane import DataPlane, InferenceRequest
from src.serving.predictor import Predictor

router = APIRouter(prefix="/v2", tags=["open inference protocol"])
SERVER_NAME = "ml-service"
EXTENSIONS = ["binary_tensor_data"]
V2 = V2_ERRORS.name


def _metadata(name: str, predictor: Predictor, versions: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "versions": versions,
        "platform": "scikit-learn",
        "inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}],
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": predictor.output, "datatype": "FP32", "shape": [-1, len(output_labels(predictor))]},
        ],
        "parameters": {
            "classes": predictor.classes,
            "engine": predictor.engine,
            "output_labels": output_labels(predictor),
        },
    }


@router.get("", summary="Server metadata", openapi_extra=policy(errors=V2))
async def server_metadata() -> dict[str, Any]:
    """The server's name, version and protocol extensions."""
    return {"name": SERVER_NAME, "version": API_VERSION, "extensions": EXTENSIONS}


@router.get("/health/live", summary="Server liveness", openapi_extra=policy(errors=V2))
async def server_live() -> JSONResponse:
    """`{"live": true}` (200) while the process answers."""
    return JSONResponse({"live": True})


@router.get("/health/ready", summary="Server readiness", openapi_extra=policy(errors=V2))
async def server_ready(models: ModelsDep) -> JSONResponse:
    """`{"ready": true}` (200) when every required model is ready (the rule of /health/ready), else
    `{"ready": false}` (400)."""
    ready = not models.not_ready()
    return JSONResponse({"ready": ready}, status_code=200 if ready else 400)


@router.get("/models/{name}", summary="Model metadata", openapi_extra=policy(scope="read", errors=V2))
@router.get(
    "/models/{name}/versions/{version}", summary="Model version metadata", openapi_extra=policy(scope="read", errors=V2)
)
async def model_metadata(plane: DataPlaneDep, request: Request, name: str, version: str | None = None) -> JSONResponse:
    """The model's loaded versions (CURRENT's, then a rollout's candidate), its input and outputs, and the
    order of its classes (of the version named, else CURRENT's)."""
    served, predictor = plane.resolve(name, version, tenant(request), route(request))
    return JSONResponse(_metadata(served, predictor, plane.models.models[served].loaded_versions))


@router.get("/models/{name}/ready", summary="Model readiness", openapi_extra=policy(errors=V2))
@router.get(
    "/models/{name}/versions/{version}/ready", summary="Model version readiness", openapi_extra=policy(errors=V2)
)
async def model_ready(plane: DataPlaneDep, name: str, version: str | None = None) -> JSONResponse:
    """`{"name": ..., "ready": true}` (200) when the model is loaded and verified, `"ready": false`
    (400) when not, 404 for an unknown model."""
    try:
        plane.resolve(name, version)
    except ModelNotReadyError:
        return JSONResponse({"name": name, "ready": False}, status_code=400)
    return JSONResponse({"name": name, "ready": True})


def _infer_extras(*names: str) -> dict[str, Any]:
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in names]
    return policy(scope="predict", shed=True, errors=V2, direct=True, parameters=parameters)


async def infer(request: Request) -> Response:
    """Classify the BYTES tensor `text`; JSON or binary tensors (Inference-Header-Content-Length).

    While feedback is on, the response parameter `feedback_token` holds each text's token, in order,
    joined by commas."""
    plane: DataPlane = request.app.state.data_plane
    parsed = parse_infer_request(await request.body(), request.headers.get(HEADER_LENGTH), plane.limits)
    inference = await plane.infer(
        InferenceRequest(
            parsed.texts,
            model=request.path_params["name"],
            version=request.path_params.get("version"),
            locate=lambda index: (*TEXT_LOCATION, index),
            batch_loc=SHAPE_LOCATION,
            client_key=lambda: client_key(request),
            request_id=request_id(request),
            protocol="v2",
            tenant=tenant(request),
            route=route(request),
        )
    )
    body, headers = encode_infer_response(parsed, inference)
    return Response(body, headers=headers)


router.add_api_route(
    "/models/{name}/infer", infer, methods=["POST"], summary="Infer", openapi_extra=_infer_extras("name")
)
router.add_api_route(
    "/models/{name}/versions/{version}/infer",
    infer,
    methods=["POST"],
    summary="Infer with a version",
    openapi_extra=_infer_extras("name", "version"),
)
