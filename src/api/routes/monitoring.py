"""The Prometheus exposition."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from src import metrics

router = APIRouter(tags=["monitoring"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus text format; with several workers, the totals of all of them (and their shared drift window)."""
    body, content_type = metrics.render(request.app.state.drift_collector)
    return Response(body, media_type=content_type)
