"""Calls the prediction handlers straight from the middleware stack: the hot path's shortcut.

FastAPI's routing, dependency solving and exception middleware cost more per request than scoring
a text. The two prediction handlers take the raw Request and return a ready Response, so they need
none of that: this middleware calls the very same handler functions for their exact method and
path, and renders errors with the same handlers the app uses. Every other request goes through
FastAPI as usual; the routes stay declared there, which is what the OpenAPI schema shows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from src.api import error_handlers
from src.errors import ServiceError

Handler = Callable[[Request], Awaitable[Response]]


class DirectRoutesMiddleware:
    """Dispatches (method, path) pairs to their handlers without FastAPI's per-request machinery."""

    def __init__(self, app: ASGIApp, routes: Mapping[tuple[str, str], Handler]) -> None:
        self.app = app
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.routes.get((scope.get("method", ""), scope.get("path", ""))) if scope["type"] == "http" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await handler(request)
        except ServiceError as error:
            response = await error_handlers.service_error(request, error)
        except RequestValidationError as error:
            response = await error_handlers.validation_error(request, error)
        except Exception as error:  # a bug: logged with the request id, answered without internals
            response = await error_handlers.unexpected_error(request, error)
        await response(scope, receive, send)
