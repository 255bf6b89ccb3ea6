"""Calls the prediction handlers straight from the middleware stack: the hot path's shortcut.

FastAPI's routing, dependency solving and exception middleware cost more per request than scoring
a text. The prediction handlers take the raw Request and return a ready Response, so they need none
of that: this middleware calls the very same handler functions for their method and path (a literal
path, or a template such as /models/{name}/predict whose parameters land in `request.path_params`),
and renders errors with the same handlers the app uses. Every other request goes through FastAPI as
usual; the routes stay declared there, which is what the OpenAPI schema shows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from src.api import error_handlers
from src.api.middleware import template_regex
from src.errors import ServiceError

Handler = Callable[[Request], Awaitable[Response]]


class DirectRoutesMiddleware:
    """Dispatches (method, path or template) pairs to their handlers without FastAPI's per-request machinery.

    Literal paths are one dict lookup; templates are tried only for paths under their literal prefix.
    """

    def __init__(self, app: ASGIApp, routes: Mapping[tuple[str, str], Handler]) -> None:
        self.app = app
        self.routes = {key: handler for key, handler in routes.items() if "{" not in key[1]}
        templated = [(method, path, handler) for (method, path), handler in routes.items() if "{" in path]
        self.templates = [(method, template_regex(path), handler) for method, path, handler in templated]
        self.prefixes = tuple({path.split("{", 1)[0] for _, path, _ in templated})

    def _find(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        handler = self.routes.get((method, path))
        if handler is not None:
            return handler, {}
        if self.prefixes and path.startswith(self.prefixes):
            for route_method, regex, route_handler in self.templates:
                match = regex.fullmatch(path)
                if match is not None and route_method == method:
                    return route_handler, match.groupdict()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self._find(scope.get("method", ""), scope.get("path", "")) if scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        handler, parameters = found
        if parameters:
            scope["path_params"] = parameters
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
