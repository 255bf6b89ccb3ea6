"""Pure ASGI middleware: request ids, metrics and access log; load shedding; the request body limit."""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
import time
from collections.abc import Collection

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from src import metrics
from src.api import error_handlers
from src.api.security import KeyCheck
from src.errors import ServiceError
from src.server.connection_guard import pending_requests


class PathSet:
    """Where a policy applies: exact paths, and path templates such as /v2/models/{name}/infer.

    A template's `{parameter}` matches one path segment; literal paths are a set lookup, so the hot
    routes pay nothing for the templates.
    """

    def __init__(self, paths: Collection[str] = (), templates: Collection[str] = ()) -> None:
        self.paths = frozenset(paths)
        self.templates = [(template, template_regex(template)) for template in templates]

    def match(self, path: str) -> str | None:
        """The path or template that `path` falls under, or None."""
        if path in self.paths:
            return path
        for template, regex in self.templates:
            if regex.fullmatch(path):
                return template
        return None

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and self.match(path) is not None


def template_regex(template: str) -> re.Pattern[str]:
    """/models/{name}/predict -> a regex whose named groups are the path parameters (one segment each)."""
    return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)))


# Paths that do not count themselves in the request metrics.
UNMEASURED_PATHS = frozenset({"/metrics", "/health", "/health/live", "/health/ready"})
# Label values must stay few: a client can send any method name.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
access_logger = logging.getLogger("src.access")


async def send_json_error(send: Send, status: int, detail: str, headers: Collection[tuple[bytes, bytes]] = ()) -> None:
    """Answer with `{"detail": ...}` straight from middleware, before the app sees the request."""
    payload = json.dumps({"detail": detail}).encode()
    start_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*start_headers, *headers]})
    await send({"type": "http.response.body", "body": payload})


class ObservabilityMiddleware:
    """Gives each request an id (X-Request-ID, the client's if it sent a sane one) and measures it."""

    def __init__(self, app: ASGIApp, routes: Collection[str], access_log: bool = False) -> None:
        self.app = app
        # Every route is labelled by its template, so /v2/models/{name}/infer is one series.
        self.routes = PathSet(
            [route for route in routes if "{" not in route], [route for route in routes if "{" in route]
        )
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode())
        path = scope["path"]
        measured = path not in UNMEASURED_PATHS
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        started = time.perf_counter()
        if not measured:
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                if self.access_log:
                    self._log(scope, request_id, status, time.perf_counter() - started)
            return
        metrics.HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            metrics.HTTP_IN_FLIGHT.dec()
            elapsed = time.perf_counter() - started
            route = self.routes.match(path) or "other"
            method = scope["method"] if scope["method"] in _METHODS else "other"
            metrics.labelled(metrics.HTTP_REQUESTS, route, method, str(status)).inc()
            metrics.labelled(metrics.HTTP_LATENCY, route).observe(elapsed)
            if self.access_log:
                self._log(scope, request_id, status, elapsed)

    @staticmethod
    def _log(scope: Scope, request_id: str, status: int, elapsed: float) -> None:
        # Method, path, status and timing only: never the body, the query string or a header (API keys).
        line = {
            "ts": round(time.time(), 3),
            "request_id": request_id,
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "duration_ms": round(elapsed * 1000, 3),
        }
        access_logger.info(json.dumps(line))


# Ids need to be unique, not secret: a random prefix per process and a counter (secrets.token_hex per
# request read the kernel's random source every time, 3% of a worker's CPU at full load).
_ID_PREFIX = secrets.token_hex(8)
_id_counter = itertools.count(1)


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _CLIENT_REQUEST_ID.fullmatch(candidate):
                return candidate
    return f"{_ID_PREFIX}{next(_id_counter):016x}"


class BodyLimitMiddleware:
    """Answers 413 for a body over `max_bytes`, from Content-Length or while reading, before any parsing."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit():
                if int(value) > self.max_bytes:
                    await self._reject(send)
                    return
                # The server delivers exactly Content-Length bytes, so the declared size is the bound.
                await self.app(scope, receive, send)
                return
        # No Content-Length (a chunked upload): read the body here, stopping as soon as it is too large.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send: Send) -> None:
        detail = f"request body is larger than the limit of {self.max_bytes} bytes (MAX_BODY_BYTES)"
        await send_json_error(send, 413, detail)


class LoadSheddingMiddleware:
    """Answers 503 with Retry-After at once when a worker already has too much work waiting for the CPU.

    Handlers run to completion without yielding, so the work a worker has accepted but not finished
    is its pending asyncio tasks (uvicorn makes one per request), less those waiting for their body
    to arrive: a client that is slow to send costs no CPU, and must not make the worker refuse
    others (measured: 200 stalled uploads made every prediction answer 503). Past `max_pending`,
    new prediction requests are refused cheaply instead of queueing without bound; health and
    metrics requests are never refused, so probes keep answering under full load.
    """

    def __init__(self, app: ASGIApp, max_pending: int, paths: PathSet, retry_after: str) -> None:
        self.app = app
        self.max_pending = max_pending
        self.paths = paths
        self.retry_after = retry_after.encode()
        self.receiving = 0  # requests of this worker now waiting for body bytes from their client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in self.paths and self._overloaded():
            metrics.REQUESTS_SHED.inc()
            detail = f"overloaded: more than {self.max_pending} requests queued (MAX_PENDING_REQUESTS); retry later"
            await send_json_error(send, 503, detail, [(b"retry-after", self.retry_after)])
            return

        async def counted_receive() -> Message:
            self.receiving += 1
            try:
                return await receive()
            finally:
                self.receiving -= 1

        await self.app(scope, counted_receive, send)

    def _overloaded(self) -> bool:
        # The quick count may still hold requests that just finished (their tasks leave uvicorn's set
        # a loop turn later); only a count past the limit is checked exactly.
        limit = self.max_pending + self.receiving
        return pending_requests() > limit and pending_requests(exact=True) > limit


class ApiKeyMiddleware:
    """Checks the API key of the protected paths before anything reads their body.

    A request without a valid key costs a header lookup, however slowly it sends its body.
    """

    def __init__(self, app: ASGIApp, paths: PathSet, keys: KeyCheck) -> None:
        self.app = app
        self.paths = paths
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.keys.enabled and scope["path"] in self.paths:
            request = Request(scope)
            try:
                self.keys.check(request)
            except ServiceError as error:
                response = await error_handlers.service_error(request, error)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
