"""The Prometheus exposition."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from src import metrics

router = APIRouter(tags=["monitoring"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def prometheus_metrics() -> Response:
    """Prometheus text format; with several workers, the totals of all of them."""
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
