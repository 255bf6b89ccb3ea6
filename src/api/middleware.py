"""Pure ASGI middleware: the request's route, id, metrics and access log; then its route's policy.

`ObservabilityMiddleware` (outermost) matches the request to its route once (src/api/routing.py),
gives it an id and measures it by route template. `PolicyMiddleware` then applies the route's
policy in one step: shed under overload, check the API key (its scope and rate; the request's
tenant goes in the scope's state), check the body's media type, bound the body, and call a directly
dispatched handler; every refusal is rendered in the route's own error format.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Collection

from fastapi.exceptions import RequestValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from src import metrics, tracing
from src.api.error_responses import ROUTE_SCOPE_KEY, render_unexpected, render_validation
from src.api.messages import BodyRequest, header
from src.api.routing import BODY_METHODS, MEDIA_TYPE_STATE_KEY, Handler, RouteMatch, RouteTable
from src.errors import OverloadedError, PayloadTooLargeError, ServiceError
from src.serving.request_identity import request_id_from
from src.tenants.access import Access

# Label values must stay few: a client can send any method name.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Set by the connection guard (src/server/connection_guard.py): the worker's set of request tasks.
REQUEST_TASKS_STATE_KEY = "ml_service.request_tasks"
access_logger = logging.getLogger("src.access")


TENANT_STATE_KEY = "tenant"  # the request's Tenant (src/tenants/keys.py) in the scope's state; None: keys off
API_KEY_HEADER = b"x-api-key"


def _request_id(scope: Scope) -> str:
    return request_id_from(header(scope, b"x-request-id"))


class ObservabilityMiddleware:
    """Matches the request's route, gives it an id (X-Request-ID, the client's if sane) and measures it."""

    def __init__(self, app: ASGIApp, routes: RouteTable, access_log: bool = False) -> None:
        self.app = app
        self.routes = routes
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        match = self.routes.match(path)
        scope[ROUTE_SCOPE_KEY] = match
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        headers = [(b"x-request-id", request_id.encode())]
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        started = time.perf_counter()
        measured = match is None or match.policy.measured
        route = match.policy.template if match is not None else "other"
        method = scope["method"] if scope["method"] in _METHODS else "other"
        if measured:
            metrics.labelled(metrics.REQUESTS_IN_FLIGHT, "http").inc()
        trace_id = None
        try:
            if tracing.TRACER is None:
                await self.app(scope, receive, send_with_id)
            else:
                parent = tracing.extract(_trace_headers(scope))
                with tracing.server_span(
                    f"{method} {route}", parent, _span_attributes(scope, route, request_id)
                ) as span:
                    headers += [(name.encode(), value.encode()) for name, value in tracing.inject(span).items()]
                    trace_id = tracing.current_trace_id()
                    try:
                        await self.app(scope, receive, send_with_id)
                    finally:
                        span.set_attribute("http.response.status_code", status)
                        if status >= 500:
                            tracing.failed(span)
        finally:
            elapsed = time.perf_counter() - started
            if measured:
                metrics.add(
                    (
                        metrics.counted(metrics.labelled(metrics.REQUESTS_IN_FLIGHT, "http"), -1.0),
                        metrics.counted(metrics.labelled(metrics.HTTP_REQUESTS, route, method, str(status))),
                        *metrics.observed(metrics.labelled(metrics.HTTP_LATENCY, route), elapsed),
                    )
                )
            if self.access_log:
                _log(scope, request_id, status, elapsed, trace_id)


def _trace_headers(scope: Scope) -> dict[str, str]:
    """The caller's W3C trace context headers, if it sent them."""
    found = {}
    for name in ("traceparent", "tracestate"):
        value = header(scope, name.encode())
        if value is not None:
            found[name] = value
    return found


def _span_attributes(scope: Scope, route: str, request_id: str) -> dict[str, str]:
    return {
        "http.request.method": scope["method"],
        "http.route": route,
        "url.path": scope["path"],
        tracing.REQUEST_ID: request_id,
    }


def _log(scope: Scope, request_id: str, status: int, elapsed: float, trace_id: str | None = None) -> None:
    # Method, path, status and timing only: never the body, the query string or a header (API keys).
    line = {
        "ts": round(time.time(), 3),
        "request_id": request_id,
        "method": scope["method"],
        "path": scope["path"],
        "status": status,
        "duration_ms": round(elapsed * 1000, 3),
        **({"trace_id": trace_id} if trace_id else {}),
    }
    access_logger.info(json.dumps(line))


def pending_requests(scope: Scope, *, exact: bool = False) -> int:
    """Requests this worker has accepted and not finished: uvicorn's own set of request tasks.

    O(1), where asyncio.all_tasks() builds a set of every task on each call. A task leaves the set a
    loop turn after it finishes, so the quick count can be high just after many requests end;
    `exact` leaves finished ones out, in O(n). Outside the connection guard (a test client), every
    task counts.
    """
    tasks: Collection[asyncio.Task[None]] | None = scope.get("state", {}).get(REQUEST_TASKS_STATE_KEY)
    if tasks is None:
        return len(asyncio.all_tasks())
    if exact:
        return sum(not task.done() for task in tasks)
    return len(tasks)


class PolicyMiddleware:
    """Applies the matched route's policy: shedding, the API key, the media type, the body limit, direct dispatch.

    Shedding: handlers run to completion without yielding, so the work a worker has accepted but
    not finished is its pending request tasks, less those waiting for their body to arrive (a slow
    sender costs no CPU and must not make the worker refuse others). Past `max_pending`, a route
    that is shed first gets 503 with Retry-After at once. The key is checked before anything reads
    the body, so a keyless request costs a header lookup however slowly it sends.
    """

    def __init__(self, app: ASGIApp, *, max_pending: int, max_body_bytes: int, access: Access) -> None:
        self.app = app
        self.max_pending = max_pending
        self.max_body_bytes = max_body_bytes
        self.access = access
        self.receiving = 0  # requests of this worker now waiting for body bytes from their client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match: RouteMatch | None = scope.get(ROUTE_SCOPE_KEY)
        if scope["type"] != "http" or match is None:
            await self.app(scope, receive, send)
            return
        route = match.policy
        try:
            if route.shed and self._overloaded(scope):
                metrics.REQUESTS_SHED.inc()
                raise OverloadedError(self.max_pending)
            # With keys off (no API_KEYS, no key file: that cannot change while the server runs),
            # only admin routes check a key.
            if route.scope is not None and (self.access.enforced or route.scope == "admin"):
                scope["state"][TENANT_STATE_KEY] = await self.access.authorize(
                    header(scope, API_KEY_HEADER), "the X-API-Key header", route.scope, route.template
                )
            if route.accepts and scope["method"] in BODY_METHODS:
                scope["state"][MEDIA_TYPE_STATE_KEY] = route.media_type(header(scope, b"content-type"))
            receive = await self._bounded(scope, receive)
        except ServiceError as error:
            await route.errors.render(error)(scope, receive, send)
            return
        handler = route.handlers.get(scope["method"])
        if handler is None:
            await self.app(scope, receive, send)
            return
        await _dispatch(handler, match, scope, receive, send)

    def _overloaded(self, scope: Scope) -> bool:
        # Only a quick count past the limit is checked exactly (finished tasks leave the set late).
        limit = self.max_pending + self.receiving
        return pending_requests(scope) > limit and pending_requests(scope, exact=True) > limit

    async def _bounded(self, scope: Scope, receive: Receive) -> Receive:
        """The request's receive, counted while waiting; PayloadTooLargeError for a body over the limit."""
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            return receive
        length = header(scope, b"content-length")
        if length is not None and length.isdigit():
            # The server delivers exactly Content-Length bytes, so the declared size is the bound.
            if int(length) > self.max_body_bytes:
                raise PayloadTooLargeError(self.max_body_bytes)
            return self._counted(receive)
        return await self._read_chunked(self._counted(receive))

    def _counted(self, receive: Receive) -> Receive:
        async def counted_receive() -> Message:
            self.receiving += 1
            try:
                return await receive()
            finally:
                self.receiving -= 1

        return counted_receive

    async def _read_chunked(self, receive: Receive) -> Receive:
        """A body without Content-Length, read here and stopped as soon as it is over the limit."""
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return _replay([message], receive)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise PayloadTooLargeError(self.max_body_bytes)
            chunks.append(chunk)
            more = message.get("more_body", False)
        return _replay([{"type": "http.request", "body": b"".join(chunks), "more_body": False}], receive)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return replay


async def _dispatch(handler: Handler, match: RouteMatch, scope: Scope, receive: Receive, send: Send) -> None:
    """Call a directly dispatched handler; its errors are rendered in its route's format."""
    if match.path_params:
        scope["path_params"] = match.path_params
    request = BodyRequest(scope, receive)
    try:
        response = await handler(request)
    except ServiceError as error:
        response = match.policy.errors.render(error)
    except RequestValidationError as error:
        response = render_validation(scope, error)
    except Exception as error:  # a bug: logged with the request id, answered without internals
        response = render_unexpected(scope, error)
    await response(scope, receive, send)
