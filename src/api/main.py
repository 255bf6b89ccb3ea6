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
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from src import API_VERSION
from src.api import error_responses
from src.api.middleware import ObservabilityMiddleware, PolicyMiddleware
from src.api.routes import ROUTERS, docs
from src.api.routing import RouteTable, document_keys
from src.config import Settings, get_settings
from src.logs import configure_logging
from src.serving.dataplane import DataPlane
from src.serving.drift_metrics import DriftCollector
from src.serving.drift_window import DriftSettings
from src.serving.feedback_desk import FeedbackDesk
from src.serving.prediction_log import PredictionLog
from src.serving.reload_broadcast import CONTROL_DIR_ENV, ReloadBroadcast
from src.serving.rollout_traffic import Guards
from src.serving.served_models import ServedModels, parse_required
from src.serving.text_rules import TextLimits
from src.store.registry import ModelRegistry
from src.tenants.access import Access

logger = logging.getLogger(__name__)
app: FastAPI  # built on first use, by __getattr__ below


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


def create_app(settings: Settings | None = None, *, grpc: bool = False) -> FastAPI:
    """A new app for these settings (the environment's by default); with `grpc` (the production
    server's workers), it also serves the Open Inference Protocol over gRPC on GRPC_PORT."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, access_log=settings.access_log)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        warn_if_metrics_are_per_worker()
        models = app.state.models
        log: PredictionLog | None = app.state.prediction_log
        if log is not None:
            log.start()
        await asyncio.to_thread(models.load_all)
        app.state.reloads.listen()
        grpc_server = None
        if grpc and settings.grpc_port:
            from src.api.grpc.server import GrpcServer  # only the production workers load gRPC

            grpc_server = GrpcServer(settings, app.state.data_plane, app.state.access, asyncio.get_running_loop())
            grpc_server.start()
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
            if grpc_server is not None:
                await grpc_server.stop()
            if log is not None:
                await asyncio.to_thread(log.stop)

    app = FastAPI(
        docs_url=None,  # served from the image by src/api/routes/docs.py, not from a CDN
        redoc_url=None,
        title="ml-service",
        version=API_VERSION,
        summary="Sentiment analysis with a TF-IDF + logistic-regression model.",
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry asks the global providers on every request; the
        # service's telemetry is its Prometheus metrics and request ids.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    control = os.environ.get(CONTROL_DIR_ENV)  # one folder per server, shared by its workers
    folder = Path(control) if control else None
    app.state.access = access = Access.from_settings(settings, folder)
    roots = [settings.model_dir, *([settings.bundled_model_dir] if settings.bundled_model_dir else [])]
    models = ServedModels(
        [ModelRegistry.from_settings(settings, root) for root in roots],
        default_name=settings.default_model_name,
        required=parse_required(settings.required_models),
        max_models=settings.max_models,
        guards=Guards(
            min_requests=settings.rollout_min_requests,
            max_error_rate=settings.rollout_max_error_rate,
            max_latency_ratio=settings.rollout_max_latency_ratio,
            max_disagreement=settings.rollout_max_disagreement,
            max_seconds_per_text=settings.rollout_max_seconds_per_text,
        ),
        drift=DriftSettings.from_settings(settings),
    )
    app.state.models = models
    app.state.reloads = ReloadBroadcast.from_environment(models)
    app.state.prediction_log = PredictionLog.from_settings(settings)
    app.state.feedback = FeedbackDesk.from_settings(settings, app.state.prediction_log, folder)
    app.state.data_plane = DataPlane(
        models, TextLimits.from_settings(settings), app.state.prediction_log, app.state.feedback.tokens
    )
    app.state.drift_collector = DriftCollector(models)
    app.state.rollout_key_header = settings.rollout_key_header.lower()
    routers = [*ROUTERS, *([docs.router] if settings.docs_enabled else [])]
    for router in routers:
        app.include_router(router)
    error_responses.install(app)
    app.state.routes = routes = RouteTable(route for router in routers for route in router.routes)
    if access.enforced:
        default_openapi = app.openapi

        def openapi_with_keys() -> dict[str, Any]:
            return document_keys(default_openapi())

        app.openapi = openapi_with_keys  # type: ignore[method-assign]
    # Outermost last: the route is matched, and the request given an id and measured, before its
    # route's policy (shedding, key, body limit) is applied and a direct route is dispatched.
    app.add_middleware(
        PolicyMiddleware,
        max_pending=settings.max_pending_requests,
        max_body_bytes=settings.max_body_bytes,
        access=access,
    )
    app.add_middleware(ObservabilityMiddleware, routes=routes, access_log=settings.access_log)
    return app


def create_worker_app() -> FastAPI:
    """The production server's worker app (uvicorn's factory): HTTP and gRPC."""
    return create_app(grpc=True)


def __getattr__(name: str) -> FastAPI:
    """`src.api.main:app`, the seed's `uvicorn src.api.main:app`, built on first use (not at import)."""
    if name == "app":
        global app
        app = create_app()
        return app
    raise AttributeError(name)
