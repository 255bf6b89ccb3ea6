"""The FastAPI application: `uvicorn src.api.main:app`.

create_app() builds the app from Settings; the lifespan finds the store's models and loads and
verifies each once, then watches the store for new models and newly published versions. A missing or
bad model leaves the process up and that model not ready (the reason on /health), never crashed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from src.api import API_VERSION, error_handlers, route_policy
from src.api.direct_routes import DirectRoutesMiddleware
from src.api.error_handlers import RETRY_AFTER_SECONDS
from src.api.middleware import (
    ApiKeyMiddleware,
    BodyLimitMiddleware,
    LoadSheddingMiddleware,
    ObservabilityMiddleware,
)
from src.api.routes import ROUTERS, docs, predict
from src.api.security import KeyCheck, parse_keys
from src.api.v2 import routes as v2
from src.config import Settings, get_settings
from src.logs import configure_logging
from src.serving.dataplane import DataPlane
from src.serving.served_models import ServedModels, parse_required
from src.store.registry import ModelRegistry

# With API_KEYS set, the routes that say so need a key: the predictions, and the models' metadata (their
# data sources, hashes and evaluation are not for everyone); the scoring routes are shed first under
# overload. Each route declares it (src/api/route_policy.py). Probes, metrics (in-cluster, behind a
# NetworkPolicy) and the playground page stay open.
_ROUTES = [route for router in (*ROUTERS, docs.router) for route in router.routes if isinstance(route, APIRoute)]
KEYED_PATHS = route_policy.paths(_ROUTES, route_policy.KEYED)
SHED_PATHS = route_policy.paths(_ROUTES, route_policy.SHED)
logger = logging.getLogger(__name__)


def warn_if_metrics_are_per_worker() -> None:
    """`uvicorn --workers N` without PROMETHEUS_MULTIPROC_DIR: each worker's /metrics counts only itself.

    uvicorn starts such workers with multiprocessing's spawn, so they have a parent process; the
    production command sets the folder before any worker starts.
    """
    if multiprocessing.parent_process() is not None and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        logger.warning(
            "this is one of several worker processes but PROMETHEUS_MULTIPROC_DIR is not set: /metrics "
            "counts only this worker's requests, so totals are wrong. Serve with `python -m src.serve`, "
            "or set PROMETHEUS_MULTIPROC_DIR to an empty folder before starting uvicorn --workers."
        )


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new app for these settings (the environment's by default)."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, access_log=settings.access_log)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        warn_if_metrics_are_per_worker()
        models = app.state.models
        await asyncio.to_thread(models.load_all)
        watcher = None
        if settings.model_poll_seconds > 0:
            watcher = asyncio.create_task(models.watch(settings.model_poll_seconds))
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher

    app = FastAPI(
        docs_url=None,  # served from the image by src/api/routes/docs.py, not from a CDN
        redoc_url=None,
        title="ml-service",
        version=API_VERSION,
        summary="Sentiment analysis with a TF-IDF + logistic-regression model.",
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry asks the global providers on every request (~10 µs); the
        # service's telemetry is its Prometheus metrics and request ids.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.prediction_keys = KeyCheck(parse_keys(settings.api_keys), required=False, setting="API_KEYS")
    app.state.admin_keys = KeyCheck(parse_keys(settings.admin_api_keys), required=True, setting="ADMIN_API_KEYS")
    roots = [settings.model_dir, *([settings.bundled_model_dir] if settings.bundled_model_dir else [])]
    registries = [
        ModelRegistry(root, default_name=settings.default_model_name, max_model_bytes=settings.max_model_bytes)
        for root in roots
    ]
    models = ServedModels(
        registries,
        default_name=settings.default_model_name,
        required=parse_required(settings.required_models),
        max_models=settings.max_models,
    )
    app.state.models = models
    app.state.data_plane = DataPlane(models, settings)
    for router in ROUTERS:
        app.include_router(router)
    if settings.docs_enabled:
        app.include_router(docs.router)
    error_handlers.install(app)
    if app.state.prediction_keys.enabled:
        default_openapi = app.openapi

        def openapi_with_keys() -> dict[str, Any]:
            return route_policy.document_keys(default_openapi())

        app.openapi = openapi_with_keys  # type: ignore[method-assign]
    routes = [route.path for router in ROUTERS for route in router.routes if isinstance(route, APIRoute)]
    # Outermost last: ids and metrics see everything; shedding and the key check happen before the body
    # is read.
    app.add_middleware(DirectRoutesMiddleware, routes={**predict.DIRECT_ROUTES, **v2.DIRECT_ROUTES})
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(ApiKeyMiddleware, paths=KEYED_PATHS, keys=app.state.prediction_keys)
    app.add_middleware(
        LoadSheddingMiddleware,
        max_pending=settings.max_pending_requests,
        paths=SHED_PATHS,
        retry_after=RETRY_AFTER_SECONDS,
    )
    app.add_middleware(ObservabilityMiddleware, routes=routes, access_log=settings.access_log)
    return app


app = create_app()
