"""Health: the seed's /health with details, and the liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from src.api.deps import ModelStateDep
from src.api.error_handlers import RETRY_AFTER_SECONDS
from src.api.schemas import HealthResponse

router = APIRouter(prefix="/health", tags=["health"])


@router.get("", summary="Process and model state")
async def health(state: ModelStateDep) -> HealthResponse:
    """Always 200 while the process runs; says whether a model is loaded, which one, or why not."""
    predictor = state.predictor
    return HealthResponse(
        status="ok" if predictor else "not_ready",
        model_loaded=predictor is not None,
        model_version=predictor.version if predictor else None,
        engine=predictor.engine if predictor else None,
        reason=state.not_ready_reason,
    )


@router.get("/live", summary="Liveness probe")
async def live() -> dict[str, str]:
    """200 while the process can answer at all."""
    return {"status": "alive"}


@router.get("/ready", summary="Readiness probe", responses={503: {"description": "No verified model loaded"}})
async def ready(state: ModelStateDep) -> JSONResponse:
    """200 only with a verified model loaded; 503 with the reason otherwise."""
    predictor = state.predictor
    if predictor is None:
        return JSONResponse(
            {"status": "not_ready", "detail": state.not_ready_reason},
            status_code=503,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    return JSONResponse({"status": "ready", "model_version": predictor.version})
