"""Route policy declared on the route itself: whether it needs an API key, whether it is shed first.

A route says so in its OpenAPI extras (`openapi_extra=policy(keyed=True, shed=True)`), which the
schema shows as the extensions below; the app builds its key check and load shedding from the routes
(`paths`), so a new route cannot be left out of a list kept elsewhere. With API_KEYS set, the schema
also carries the standard `ApiKey` security scheme on exactly those operations (`document_keys`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi.routing import APIRoute

from src.api.middleware import PathSet

KEYED = "x-requires-api-key"  # needs X-API-Key when the server has API_KEYS
SHED = "x-shed-under-overload"  # answered 503 at once when the worker is over MAX_PENDING_REQUESTS
SECURITY_SCHEME = "ApiKey"


def policy(*, keyed: bool = False, shed: bool = False, **extra: Any) -> dict[str, Any]:
    """OpenAPI extras for a route: its policy flags, merged with any other extras."""
    return {**extra, **({KEYED: True} if keyed else {}), **({SHED: True} if shed else {})}


def paths(routes: Iterable[APIRoute], flag: str) -> PathSet:
    """The paths and path templates of the routes that carry `flag`."""
    flagged = [route.path for route in routes if (route.openapi_extra or {}).get(flag)]
    return PathSet([p for p in flagged if "{" not in p], [p for p in flagged if "{" in p])


def document_keys(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with the ApiKey scheme, required by every operation that carries KEYED."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "One of the server's API_KEYS.",
    }
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and operation.get(KEYED):
                operation["security"] = [{SECURITY_SCHEME: []}]
    return schema
