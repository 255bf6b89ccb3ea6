"""The FastAPI application: `uvicorn src.api.main:app`.

create_app() adapts a serving runtime (src/serving/runtime.py: the models, the data plane, keys, the
prediction log, built from Settings) to HTTP; its lifespan starts the runtime and any companion
server on the same runtime (the worker's gRPC server), and stops them in reverse.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from src import API_VERSION
from src.api import error_responses
from src.api.middleware import ObservabilityMiddleware, PolicyMiddleware
from src.api.routes import ROUTERS, docs
from src.api.routing import RouteTable, document_keys
from src.config import Settings, get_settings
from src.logs import configure_logging
from src.serving.runtime import ServingRuntime

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


class ServiceApp(FastAPI):
    """FastAPI with the service's own middleware outermost: a request is matched, measured and held to its
    route's policy before FastAPI's stack is entered, and a directly dispatched route (the predictions)
    never enters it. FastAPI's stack (its error middleware, routing, dependencies) serves the rest."""

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        front = self.front
        if front is None or scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        await front(scope, receive, send)

    async def fastapi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI's own handling of a request (what the front hands on)."""
        await super().__call__(scope, receive, send)


class Companion(Protocol):
    """A server that runs beside the HTTP app in the same worker, on the same runtime (gRPC)."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


def create_app(
    settings: Settings | None = None,
    runtime: ServingRuntime | None = None,
    companions: Sequence[Companion] = (),
) -> FastAPI:
    """The HTTP app over a serving runtime (a new one from these settings, the environment's by
    default); `companions` start after the runtime and stop before it."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, access_log=settings.access_log)
    runtime = runtime or ServingRuntime.from_settings(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        warn_if_metrics_are_per_worker()
        await runtime.start()
        started: list[Companion] = []
        try:
            for companion in companions:
                companion.start()
                started.append(companion)
            yield
        finally:
            for companion in reversed(started):
                await companion.stop()
            await runtime.stop()

    app = ServiceApp(
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
    app.state.runtime = runtime
    # What the routes read, from the runtime.
    app.state.access = access = runtime.access
    app.state.models = runtime.models
    app.state.reloads = runtime.reloads
    app.state.prediction_log = runtime.prediction_log
    app.state.feedback = runtime.feedback
    app.state.data_plane = runtime.data_plane
    app.state.drift_collector = runtime.drift_collector
    app.state.rollout_key_header = runtime.rollout_key_header
    app.state.rollout_key_header_bytes = runtime.rollout_key_header.lower().encode("latin-1")
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
    # The route is matched, and the request given an id and measured, before its route's policy
    # (shedding, key, body limit) is applied and a direct route is dispatched; the rest go on to FastAPI.
    policy = PolicyMiddleware(
        app.fastapi, max_pending=settings.max_pending_requests, max_body_bytes=settings.max_body_bytes, access=access
    )
    app.front = ObservabilityMiddleware(policy, routes=routes, access_log=settings.access_log)
    return app


def create_worker_app() -> FastAPI:
    """The production server's worker app (uvicorn's factory): one runtime, served over HTTP and gRPC."""
    settings = get_settings()
    runtime = ServingRuntime.from_settings(settings)
    companions: list[Companion] = []
    if settings.grpc_port:
        from src.api.grpc.server import GrpcServer  # only the production workers load gRPC

        companions.append(GrpcServer(settings, runtime))
    return create_app(settings, runtime, companions)


def __getattr__(name: str) -> FastAPI:
    """`src.api.main:app`, the seed's `uvicorn src.api.main:app`, built on first use (not at import)."""
    if name == "app":
        global app
        app = create_app()
        return app
    raise AttributeError(name)
