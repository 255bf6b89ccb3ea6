"""The Open Inference Protocol (KServe V2) REST routes, thin adapters over the data plane.

Errors are `{"error": ...}` as the protocol says: 400 for a malformed request or tensor, 404 for an
unknown model or version, 503 while the model is not loaded. Health answers carry no body: 200 is
true, 400 is false. Every model the server serves is a V2 model of the same name; a version named in
the path must be the one serving now.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from src.api import API_VERSION
from src.api.route_policy import policy
from src.api.v2.codec import HEADER_LENGTH, encode_infer_response, parse_infer_request
from src.errors import InvalidInputError, ServiceError, UnknownModelError
from src.serving.dataplane import DataPlane
from src.serving.predictor import Predictor
from src.serving.served_models import ServedModels

router = APIRouter(prefix="/v2", tags=["open inference protocol"])
SERVER_NAME = "ml-service"
EXTENSIONS = ["binary_tensor_data"]


def _protocol_error(error: ServiceError) -> JSONResponse:
    # The JSON routes answer a rule broken with 422; the protocol says 400.
    status = 400 if error.status_code == 422 else error.status_code
    message = error.message
    if isinstance(error, InvalidInputError) and error.loc:
        message += f" (at {'.'.join(map(str, error.loc))})"
    return JSONResponse({"error": message}, status_code=status)


async def _guarded(work: Callable[[], Awaitable[Response]]) -> Response:
    try:
        return await work()
    except ServiceError as error:
        return _protocol_error(error)


def _model(request: Request, name: str, version: str | None) -> Predictor:
    plane: DataPlane = request.app.state.data_plane
    return plane.predictor(name, version)


def _metadata(name: str, predictor: Predictor) -> dict[str, Any]:
    return {
        "name": name,
        "versions": [predictor.version],
        "platform": "scikit-learn",
        "inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}],
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(predictor.classes)]},
        ],
        "parameters": {"classes": predictor.classes, "engine": predictor.engine},
    }


@router.get("", summary="Server metadata")
async def server_metadata() -> dict[str, Any]:
    """The server's name, version and protocol extensions."""
    return {"name": SERVER_NAME, "version": API_VERSION, "extensions": EXTENSIONS}


@router.get("/health/live", summary="Server liveness")
async def server_live() -> Response:
    """200 while the process answers."""
    return Response(status_code=200)


@router.get("/health/ready", summary="Server readiness")
async def server_ready(request: Request) -> Response:
    """200 when every required model is ready (the rule of /health/ready), 400 otherwise."""
    models: ServedModels = request.app.state.models
    return Response(status_code=400 if models.not_ready() else 200)


@router.get("/models/{name}", summary="Model metadata", openapi_extra=policy(keyed=True))
@router.get("/models/{name}/versions/{version}", summary="Model version metadata", openapi_extra=policy(keyed=True))
async def model_metadata(request: Request, name: str, version: str | None = None) -> Response:
    """The model's versions, its input and outputs, and the order of its classes."""

    async def work() -> Response:
        return JSONResponse(_metadata(name, _model(request, name, version)))

    return await _guarded(work)


@router.get("/models/{name}/ready", summary="Model readiness")
@router.get("/models/{name}/versions/{version}/ready", summary="Model version readiness")
async def model_ready(request: Request, name: str, version: str | None = None) -> Response:
    """200 when the model is loaded and verified, 400 when not, 404 for an unknown model."""
    try:
        _model(request, name, version)
    except UnknownModelError as error:
        return _protocol_error(error)
    except ServiceError:
        return Response(status_code=400)
    return Response(status_code=200)


def _infer_extras(*names: str) -> dict[str, Any]:
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in names]
    return policy(keyed=True, shed=True, parameters=parameters)


async def infer(request: Request) -> Response:
    """Classify the BYTES tensor `text`; JSON or binary tensors (Inference-Header-Content-Length)."""
    name: str = request.path_params["name"]
    version: str | None = request.path_params.get("version")

    async def work() -> Response:
        plane: DataPlane = request.app.state.data_plane
        plane.predictor(name, version)  # 404 or 503 before reading the body
        parsed = parse_infer_request(await request.body(), request.headers.get(HEADER_LENGTH))
        plane.check_texts(parsed.texts, lambda index: ("inputs", 0, "data", index), ("inputs", 0, "shape"))
        inference = await plane.infer(parsed.texts, model=name, version=version)
        body, headers = encode_infer_response(
            parsed, inference.model_name, inference.model_version, inference.classes, inference.results
        )
        return Response(body, headers=headers)

    return await _guarded(work)


# The hot route takes the raw Request, so DirectRoutesMiddleware can call it without FastAPI's routing.
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
DIRECT_ROUTES = {
    ("POST", route): infer for route in ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer")
}
