"""The served model's metadata, and the Prometheus exposition."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from src.api import metrics
from src.api.deps import PredictorDep

router = APIRouter()


@router.get("/model", tags=["model"], summary="Metadata of the served model")
async def model_metadata(predictor: PredictorDep) -> dict[str, Any]:
    """What the store recorded when the model was published, plus how it is being scored."""
    return {**predictor.metadata, "version": predictor.version, "engine": predictor.engine}


@router.get("/metrics", tags=["monitoring"], summary="Prometheus metrics", response_class=Response)
async def prometheus_metrics() -> Response:
    """Prometheus text format; with several workers, the totals of all of them."""
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
