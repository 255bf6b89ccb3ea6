"""The Prometheus exposition, for Prometheus only.

/metrics names every model, version and key id, so it is not open to whoever reaches the service
port: with METRICS_TOKEN set it needs `Authorization: Bearer <METRICS_TOKEN>` (Prometheus sends it
from `authorization.credentials_file`); with API keys on and no METRICS_TOKEN it is refused. Only a
server with keys off and no token (a laptop) serves it to anyone.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import Response

from src import metrics
from src.api.routing import policy
from src.errors import ForbiddenError, UnauthorizedError

router = APIRouter(tags=["monitoring"])


def check_scraper(request: Request) -> None:
    """UnauthorizedError (401) without the token, ForbiddenError (403) when keys are on and no token is set."""
    token = request.app.state.settings.metrics_token
    if token is None:
        if request.app.state.access.enforced:
            raise ForbiddenError("/metrics is off: API keys are on and no METRICS_TOKEN is set for Prometheus")
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = token.get_secret_value().strip().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise UnauthorizedError("/metrics needs the METRICS_TOKEN as `Authorization: Bearer <token>`")


@router.get(
    "/metrics",
    summary="Prometheus metrics (with METRICS_TOKEN as a bearer token)",
    response_class=Response,
    responses={401: {"description": "No or a wrong bearer token"}, 403: {"description": "Keys on, no METRICS_TOKEN"}},
    openapi_extra=policy(measured=False),
)
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus text format; with several workers, the totals of all of them (and their shared drift window)."""
    check_scraper(request)
    body, content_type = metrics.render(request.app.state.drift_collector)
    return Response(body, media_type=content_type)
