"""Route policy, declared on each route and read once: what a request's route needs and how it answers.

A route declares its policy in its OpenAPI extras (`openapi_extra=policy(scope="predict", shed=True)`),
which the schema shows as extensions: the scope its API key needs (src/tenants/keys.py), whether it is
shed first under overload, which error format it answers in, the media types its body may have
(JSON unless it says otherwise), whether it counts itself in the request metrics (probes and the
scrape do not), and whether it is dispatched directly (its handler takes the raw Request and returns
a ready Response, so FastAPI's per-request routing, dependency solving and exception middleware are
skipped). `RouteTable` reads every route once, at
start-up, with the regexes Starlette compiled for them; a request is matched once, by the outermost
middleware, and every later step reads that match from the scope.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from src.api.error_responses import FORMATS, JSON_ERRORS, ErrorFormat
from src.errors import UnsupportedMediaTypeError
from src.tenants.keys import SCOPES

KEYED = "x-api-key-scope"  # the scope an X-API-Key needs (when keys are on; admin always needs one)
SHED = "x-shed-under-overload"  # answered 503 at once when the worker is over MAX_PENDING_REQUESTS
ERRORS = "x-error-format"  # `json` ({"detail"}) or `v2` ({"error"})
DIRECT = "x-direct-dispatch"  # the handler is called without FastAPI's per-request machinery
ACCEPTS = "x-accepts"  # the media types a body may have; the first is assumed when a client names none
UNMEASURED = "x-unmeasured"  # not counted in the request metrics (probes, the scrape)
MEDIA_TYPE_STATE_KEY = "media_type"  # a body's media type, one its route takes, in the request's state
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON_BODY = ("application/json",)
SECURITY_SCHEME = "ApiKey"

Handler = Callable[[Request], Awaitable[Response]]


def policy(
    *,
    scope: str | None = None,
    shed: bool = False,
    errors: str = JSON_ERRORS.name,
    direct: bool = False,
    accepts: tuple[str, ...] = JSON_BODY,
    measured: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """OpenAPI extras for a route: its policy, merged with any other extras."""
    if scope is not None and scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    if not accepts or any(media != media.lower() or ";" in media for media in accepts):
        raise ValueError(f"accepted media types must be lowercase types without parameters, not {accepts!r}")
    flags = {SHED: shed, DIRECT: direct, UNMEASURED: not measured}
    return {
        **extra,
        **({KEYED: scope} if scope else {}),
        **{flag: True for flag, on in flags.items() if on},
        **({ERRORS: errors} if errors != JSON_ERRORS.name else {}),
        **({ACCEPTS: list(accepts)} if accepts != JSON_BODY else {}),
    }


@dataclass(frozen=True)
class RoutePolicy:
    """What every route at one path (template) needs; `handlers` are its directly dispatched methods."""

    template: str
    scope: str | None = None  # what its API key needs; None: no key
    shed: bool = False
    errors: ErrorFormat = JSON_ERRORS
    accepts: tuple[str, ...] = ()  # the media types of a body; () for a path that takes none
    measured: bool = True
    handlers: Mapping[str, Handler] = field(default_factory=dict)

    def media_type(self, content_type: str | None) -> str:
        """The body's media type (a missing Content-Type is the route's first); UnsupportedMediaTypeError
        for one the route does not take."""
        if not content_type:
            return self.accepts[0]
        media = content_type.split(";", 1)[0].strip().lower()
        if media not in self.accepts:
            raise UnsupportedMediaTypeError(media, " or ".join(self.accepts))
        return media


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """A request's route: its policy and path parameters."""

    policy: RoutePolicy
    path_params: dict[str, str]


class RouteTable:
    """Every route's policy by path: literal paths in a dict, templates by Starlette's compiled regexes."""

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        grouped: dict[str, list[APIRoute]] = {}
        regexes: dict[str, re.Pattern[str]] = {}
        for route in routes:
            if isinstance(route, APIRoute):
                grouped.setdefault(route.path, []).append(route)
                regexes[route.path] = route.path_regex
        self.literal: dict[str, RouteMatch] = {}
        self.templated: list[tuple[re.Pattern[str], RoutePolicy]] = []
        for path, same_path in grouped.items():
            route_policy = _policy(path, same_path)
            if "{" in path:
                self.templated.append((regexes[path], route_policy))
            else:
                self.literal[path] = RouteMatch(route_policy, {})
        self.prefixes = tuple({pattern.split("{", 1)[0] for pattern in grouped if "{" in pattern})

    def match(self, path: str) -> RouteMatch | None:
        """The route of a path, or None; a literal path is one dict lookup, templates only under their prefixes."""
        found = self.literal.get(path)
        if found is not None or not path.startswith(self.prefixes):
            return found
        for regex, route_policy in self.templated:
            matched = regex.match(path)
            if matched is not None:
                return RouteMatch(route_policy, matched.groupdict())
        return None

    def paths(self, flag: str) -> set[str]:
        """The paths and templates whose policy has `flag` (KEYED, SHED, ACCEPTS or UNMEASURED)."""
        if flag == UNMEASURED:
            return {p.template for p in self.policies() if not p.measured}
        attribute = {KEYED: "scope", SHED: "shed", ACCEPTS: "accepts"}[flag]
        return {p.template for p in self.policies() if getattr(p, attribute)}

    def policies(self) -> list[RoutePolicy]:
        """Every path's policy."""
        return [match.policy for match in self.literal.values()] + [p for _, p in self.templated]


def _policy(path: str, routes: list[APIRoute]) -> RoutePolicy:
    extras = [route.openapi_extra or {} for route in routes]
    handlers = {
        method: route.endpoint
        for route, extra in zip(routes, extras, strict=True)
        if extra.get(DIRECT)
        for method in route.methods or ()
    }
    formats = {extra.get(ERRORS, JSON_ERRORS.name) for extra in extras}
    if len(formats) != 1:
        raise ValueError(f"routes at {path} disagree on their error format: {sorted(formats)}")
    scopes = {extra.get(KEYED) for extra in extras}
    if len(scopes) != 1:
        raise ValueError(f"routes at {path} disagree on their key scope: {sorted(map(str, scopes))}")
    bodies = {
        tuple(extra.get(ACCEPTS, JSON_BODY))
        for route, extra in zip(routes, extras, strict=True)
        if BODY_METHODS & set(route.methods or ())
    }
    if len(bodies) > 1:
        raise ValueError(f"routes at {path} disagree on the media types they take: {sorted(bodies)}")
    return RoutePolicy(
        template=path,
        scope=scopes.pop(),
        shed=any(extra.get(SHED) for extra in extras),
        errors=FORMATS[formats.pop()],
        accepts=bodies.pop() if bodies else (),
        measured=not any(extra.get(UNMEASURED) for extra in extras),
        handlers=handlers,
    )


def document_keys(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with the ApiKey scheme, required by every operation that carries KEYED."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "One of the server's API keys (API_KEYS, API_KEYS_FILE) with the operation's scope "
        "(its x-api-key-scope: predict, feedback, read or admin).",
    }
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and operation.get(KEYED):
                operation["security"] = [{SECURITY_SCHEME: []}]
    return schema
