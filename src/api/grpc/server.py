"""The gRPC server of one worker: the inference service and grpc.health.v1 on GRPC_PORT.

Every worker of the production server binds GRPC_PORT with SO_REUSEPORT, as it does the HTTP port,
so the kernel spreads gRPC connections over the workers. Calls run in GRPC_THREADS threads and
are scored on the worker's event loop (src/api/grpc/service.py); the models, their hot reloads and
rollouts are the worker's own. On shutdown the health service says NOT_SERVING, new calls are
refused and calls in flight get GRACEFUL_TIMEOUT_SECONDS to finish.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from src import metrics
from src.api.grpc.service import SERVICE_NAME, InferenceService
from src.config import Settings
from src.serving.runtime import ServingRuntime

logger = logging.getLogger(__name__)

# How often the health service follows the models' readiness.
HEALTH_SECONDS = 1.0


def address(host: str, port: int) -> str:
    """host:port, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class GrpcServer:
    """Starts, follows readiness, and drains the worker's gRPC server."""

    def __init__(self, settings: Settings, runtime: ServingRuntime) -> None:
        self.settings = settings
        self.runtime = runtime
        self.plane = runtime.data_plane
        self.health = health.HealthServicer()
        self.server = grpc.server(
            ThreadPoolExecutor(settings.grpc_threads, thread_name_prefix="grpc"),
            options=[
                ("grpc.so_reuseport", 1),
                ("grpc.max_receive_message_length", settings.grpc_max_message_bytes),
                # The HTTP side's limits on slow, silent and greedy clients (src/server/connection_guard.py):
                # a connection that has not completed its HTTP/2 handshake within HEADER_TIMEOUT_SECONDS is
                # closed, as is one without a call for GRPC_IDLE_TIMEOUT_SECONDS; at most
                # MAX_CONNECTIONS_PER_WORKER connections are held (more are closed at once), so gRPC clients
                # cannot take the file descriptors the worker's HTTP port needs.
                ("grpc.server_handshake_timeout_ms", int(settings.header_timeout_seconds * 1000)),
                ("grpc.max_connection_idle_ms", int(settings.grpc_idle_timeout_seconds * 1000)),
                ("grpc.max_allowed_incoming_connections", settings.max_connections_per_worker),
            ],
            # Load shedding: past MAX_PENDING_REQUESTS calls in this worker (answered or waiting for a
            # thread), gRPC answers RESOURCE_EXHAUSTED at once, before reading a message into Python.
            maximum_concurrent_rpcs=settings.max_pending_requests,
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.follower: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Serve on GRPC_PORT, scoring on the running event loop; OSError if the port cannot be bound."""
        service = InferenceService(
            self.plane,
            self.runtime.access,
            asyncio.get_running_loop(),
            rollout_key_header=self.runtime.rollout_key_header,
        )
        self.server.add_generic_rpc_handlers((service.handler(),))
        where = address(self.settings.host, self.settings.grpc_port)
        if self.server.add_insecure_port(where) == 0:
            raise OSError(f"cannot bind the gRPC port {where}")
        self.server.start()
        metrics.labelled(metrics.REQUESTS_IN_FLIGHT_LIMIT, "grpc").set(self.settings.max_pending_requests)
        self.follow_readiness()
        self.follower = asyncio.get_running_loop().create_task(self._follow())
        logger.info("gRPC (Open Inference Protocol, grpc.health.v1) on %s", where)

    def follow_readiness(self) -> None:
        """SERVING while every required model is ready (the rule of /health/ready), else NOT_SERVING."""
        status = health_pb2.HealthCheckResponse.NOT_SERVING
        if not self.plane.models.not_ready():
            status = health_pb2.HealthCheckResponse.SERVING
        for name in ("", SERVICE_NAME):
            self.health.set(name, status)

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_SECONDS)
            self.follow_readiness()

    async def stop(self) -> None:
        """NOT_SERVING, refuse new calls, let calls in flight finish (the event loop keeps scoring them)."""
        if self.follower is not None:
            self.follower.cancel()
        self.health.enter_graceful_shutdown()
        grace = self.settings.graceful_timeout_seconds
        await asyncio.to_thread(lambda: self.server.stop(grace).wait(grace + 1))
