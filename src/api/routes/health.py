"""Health: the seed's /health with details, and the liveness and readiness probes.

Readiness rule: /health/ready is 200 when every required model (REQUIRED_MODELS; the default model
unless set, `*` for every model found) serves a verified version. Other models report their own
readiness on /health, /models and /v2/models/{name}/ready, and answer 503 while not loaded.

The probes need no key, so with API keys on they say only whether the process is ok or ready: which
models it serves, at which versions, is for a key to ask (`GET /models`, the `read` scope).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from src.api.deps import DataPlaneDep
from src.api.error_responses import not_ready
from src.api.routing import policy
from src.api.schemas import HealthResponse, ModelHealth

router = APIRouter(prefix="/health", tags=["health"])


def _keys_on(request: Request) -> bool:
    return bool(request.app.state.access.enforced)


@router.get(
    "",
    summary="Process and model state",
    response_model=HealthResponse,
    response_model_exclude_unset=True,
    openapi_extra=policy(measured=False),
)
async def health(plane: DataPlaneDep, request: Request) -> dict[str, Any]:
    """Always 200 while the process runs; says which models are loaded, which versions, or why not.

    The top-level model fields describe the default model; `models` has every model. With API keys
    on, only `status` and `model_loaded`.
    """
    reports = plane.model_reports()
    default = next(report for report in reports if report.default)
    answer: dict[str, Any] = {"status": "ok" if plane.ready() else "not_ready", "model_loaded": default.ready}
    if _keys_on(request):
        return answer
    return {
        **answer,
        "model_version": default.version,
        "engine": default.engine,
        "reason": default.reason,
        "models": {
            report.name: ModelHealth(
                ready=report.ready,
                version=report.version,
                engine=report.engine,
                reason=report.reason,
                required=report.required,
            )
            for report in reports
        },
    }


@router.get("/live", summary="Liveness probe", openapi_extra=policy(measured=False))
async def live() -> dict[str, str]:
    """200 while the process can answer at all."""
    return {"status": "alive"}


@router.get(
    "/ready",
    summary="Readiness probe",
    responses={503: {"description": "A required model is not loaded"}},
    openapi_extra=policy(measured=False),
)
async def ready(plane: DataPlaneDep, request: Request) -> Response:
    """200 when every required model serves a verified version; 503 naming the ones that do not, and why
    (with API keys on, how many, without their names)."""
    waiting = plane.not_ready()
    keys_on = _keys_on(request)
    if waiting:
        if keys_on:
            detail = f"{len(waiting)} required model(s) not loaded yet"
        else:
            detail = "; ".join(f"model {name}: {reason}" for name, reason in waiting.items())
        return not_ready({"status": "not_ready", "detail": detail})
    if keys_on:
        return JSONResponse({"status": "ready"})
    reports = plane.model_reports()
    default = next(report for report in reports if report.default)
    versions = {report.name: report.version for report in reports if report.ready}
    return JSONResponse({"status": "ready", "model_version": default.version, "models": versions})
