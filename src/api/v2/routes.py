"""The Open Inference Protocol (KServe V2) REST routes, thin adapters over the data plane.

Errors are `{"error": ...}` as the protocol says (src/api/error_responses.py): 400 for a malformed
request or a broken text rule, 404 for an unknown model or version, 503 while the model is not
loaded. Health answers carry the protocol's REST bodies (`{"live": true}`, `{"ready": ...}`, a
model's `{"name": ..., "ready": ...}`, as KServe's SDK reads them) and say the same by status: 200
is true, 400 is false. Every model the server serves is
a V2 model of the same name; a version named in the path must be the one serving now.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from src import tracing
from src.api.deps import DataPlaneDep, inference_request, route, tenant
from src.api.deps import infer as infer_placed
from src.api.error_responses import V2_ERRORS
from src.api.open_inference import SHAPE_LOCATION, model_parameters, model_tensors
from src.api.request_bodies import json_object
from src.api.routing import policy
from src.api.v2.codec import (
    HEADER_LENGTH,
    TEXT_LOCATION,
    encode_infer_response,
    parse_infer_request,
)
from src.errors import BadRequestError
from src.serving.dataplane import DataPlane
from src.serving.inference import ModelMetadata

router = APIRouter(prefix="/v2", tags=["open inference protocol"])
V2 = V2_ERRORS.name


def _metadata(model: ModelMetadata) -> dict[str, Any]:
    inputs, outputs = model_tensors(model)
    return {
        "name": model.name,
        "versions": model.versions,
        "platform": model.platform,
        "inputs": [asdict(spec) for spec in inputs],
        "outputs": [asdict(spec) for spec in outputs],
        "parameters": model_parameters(model),
    }


@router.get("", summary="Server metadata", openapi_extra=policy(errors=V2))
async def server_metadata(plane: DataPlaneDep) -> dict[str, Any]:
    """The server's name, version and protocol extensions."""
    server = plane.server_metadata()
    return {"name": server.name, "version": server.version, "extensions": list(server.extensions)}


@router.get("/health/live", summary="Server liveness", openapi_extra=policy(errors=V2))
async def server_live(plane: DataPlaneDep) -> JSONResponse:
    """`{"live": true}` (200) while the process answers."""
    return JSONResponse({"live": plane.live()})


@router.get("/health/ready", summary="Server readiness", openapi_extra=policy(errors=V2))
async def server_ready(plane: DataPlaneDep) -> JSONResponse:
    """`{"ready": true}` (200) when every required model is ready (the rule of /health/ready), else
    `{"ready": false}` (400)."""
    ready = plane.ready()
    return JSONResponse({"ready": ready}, status_code=200 if ready else 400)


@router.get("/models/{name}", summary="Model metadata", openapi_extra=policy(scope="read", errors=V2))
@router.get(
    "/models/{name}/versions/{version}", summary="Model version metadata", openapi_extra=policy(scope="read", errors=V2)
)
async def model_metadata(plane: DataPlaneDep, request: Request, name: str, version: str | None = None) -> JSONResponse:
    """The model's loaded versions (CURRENT's, then a rollout's candidate), its input and outputs, and the
    order of its classes (of the version named, else CURRENT's)."""
    return JSONResponse(_metadata(plane.model_metadata(name, version, tenant(request), route(request))))


@router.get("/models/{name}/ready", summary="Model readiness", openapi_extra=policy(scope="read", errors=V2))
@router.get(
    "/models/{name}/versions/{version}/ready",
    summary="Model version readiness",
    openapi_extra=policy(scope="read", errors=V2),
)
async def model_ready(plane: DataPlaneDep, request: Request, name: str, version: str | None = None) -> JSONResponse:
    """`{"name": ..., "ready": true}` (200) when the model is loaded and verified, `"ready": false`
    (400) when not, 404 for an unknown model (or one the key may not use)."""
    ready = plane.model_ready(name, version, tenant(request), route(request))
    return JSONResponse({"name": name, "ready": ready}, status_code=200 if ready else 400)


@router.post("/repository/index", summary="Repository index", openapi_extra=policy(scope="read", errors=V2))
async def repository_index(plane: DataPlaneDep, request: Request) -> JSONResponse:
    """Every model the key may see, loaded or not: `name`, `version`, `state` (READY, LOADING, UNAVAILABLE)
    and `reason`; a body `{"ready": true}` (or false) keeps only the models that are (or are not) ready."""
    body = await request.body()
    ready = None
    if body.strip():
        asked = json_object(body, "the index request")
        ready = asked.get("ready")
        if ready is not None and not isinstance(ready, bool):
            raise BadRequestError("'ready' must be true or false")
    return JSONResponse([asdict(entry) for entry in plane.repository_index(tenant(request), ready)])


@router.post("/repository/models/{name}/load", summary="Load a model", openapi_extra=policy(scope="admin", errors=V2))
async def repository_load(plane: DataPlaneDep, request: Request, name: str) -> JSONResponse:
    """Load the model now in this worker (admin), as its first request would."""
    await plane.load_model(name, tenant(request), route(request))
    return JSONResponse({})


@router.post(
    "/repository/models/{name}/unload", summary="Unload a model", openapi_extra=policy(scope="admin", errors=V2)
)
async def repository_unload(plane: DataPlaneDep, request: Request, name: str) -> JSONResponse:
    """Unload the model in this worker (admin): 409 for a required model or one in use."""
    plane.unload_model(name, tenant(request), route(request))
    return JSONResponse({})


def _infer_extras(*names: str) -> dict[str, Any]:
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in names]
    # JSON, or JSON then binary tensors (KServe's SDK calls those application/octet-stream).
    accepts = ("application/json", "application/octet-stream")
    return policy(scope="predict", shed=True, errors=V2, direct=True, accepts=accepts, parameters=parameters)


async def infer(request: Request) -> Response:
    """Classify the BYTES tensor `text`; JSON or binary tensors (Inference-Header-Content-Length).

    While feedback is on, the response parameter `feedback_token` holds each text's token, in order,
    joined by commas."""
    plane: DataPlane = request.app.state.data_plane
    body = await request.body()
    with tracing.child("parse"):
        parsed = parse_infer_request(body, request.headers.get(HEADER_LENGTH), plane.limits)
    asked = inference_request(
        request,
        parsed.texts,
        model=request.path_params["name"],
        version=request.path_params.get("version"),
        protocol="v2",
    )
    inference = await infer_placed(plane, asked, lambda index: (*TEXT_LOCATION, index), SHAPE_LOCATION)
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
