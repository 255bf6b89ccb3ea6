"""Health: the seed's /health with details, and the liveness and readiness probes.

Readiness rule: /health/ready is 200 when every required model (REQUIRED_MODELS; the default model
unless set, `*` for every model found) serves a verified version. Other models report their own
readiness on /health, /models and /v2/models/{name}/ready, and answer 503 while not loaded.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from src.api.deps import ModelsDep
from src.api.schemas import HealthResponse, ModelHealth
from src.errors import RETRY_AFTER_SECONDS
from src.serving.served_models import ServedModels

router = APIRouter(prefix="/health", tags=["health"])


def model_health(models: ServedModels) -> dict[str, ModelHealth]:
    """Each served model's readiness, version and engine, or why it serves nothing."""
    report = {}
    for name, state in sorted(models.models.items()):
        predictor = state.predictor
        report[name] = ModelHealth(
            ready=predictor is not None,
            version=predictor.version if predictor else None,
            engine=predictor.engine if predictor else None,
            reason=state.not_ready_reason,
            required=name in models.required_names(),
        )
    return report


@router.get("", summary="Process and model state")
async def health(models: ModelsDep) -> HealthResponse:
    """Always 200 while the process runs; says which models are loaded, which versions, or why not.

    The top-level model fields describe the default model; `models` has every model.
    """
    default = models.default
    predictor = default.predictor
    return HealthResponse(
        status="not_ready" if models.not_ready() else "ok",
        model_loaded=predictor is not None,
        model_version=predictor.version if predictor else None,
        engine=predictor.engine if predictor else None,
        reason=default.not_ready_reason,
        models=model_health(models),
    )


@router.get("/live", summary="Liveness probe")
async def live() -> dict[str, str]:
    """200 while the process can answer at all."""
    return {"status": "alive"}


@router.get("/ready", summary="Readiness probe", responses={503: {"description": "A required model is not loaded"}})
async def ready(models: ModelsDep) -> JSONResponse:
    """200 when every required model serves a verified version; 503 naming the ones that do not, and why."""
    waiting = models.not_ready()
    if waiting:
        detail = "; ".join(f"model {name}: {reason}" for name, reason in waiting.items())
        return JSONResponse(
            {"status": "not_ready", "detail": detail},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    default = models.default.predictor
    versions = {name: state.predictor.version for name, state in models.models.items() if state.predictor}
    return JSONResponse({"status": "ready", "model_version": default.version if default else None, "models": versions})
