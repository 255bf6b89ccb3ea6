"""Dependencies that routes declare by type: the served models and the data plane.

All are `async def`: FastAPI runs a plain `def` dependency in a thread pool, a hop per request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Depends, Request

from src.api.error_responses import ROUTE_SCOPE_KEY
from src.serving.dataplane import DataPlane, InferenceRequest
from src.serving.request_identity import client_key_from
from src.serving.served_models import ServedModels
from src.tenants.keys import Tenant


async def get_models(request: Request) -> ServedModels:
    """The process's served models."""
    models: ServedModels = request.app.state.models
    return models


ModelsDep = Annotated[ServedModels, Depends(get_models)]


async def get_data_plane(request: Request) -> DataPlane:
    """The process's data plane: where a request finds its model."""
    plane: DataPlane = request.app.state.data_plane
    return plane


DataPlaneDep = Annotated[DataPlane, Depends(get_data_plane)]


def client_key(request: Request) -> str:
    """What keeps a client on one version during a canary: ROLLOUT_KEY_HEADER's value (see request_identity)."""
    return client_key_from(request.headers.get(request.app.state.rollout_key_header))


def inference_request(request: Request, texts: Sequence[str], **options: Any) -> InferenceRequest:
    """An HTTP request's InferenceRequest: its texts and options, with who sent it (request id, API key's
    tenant, canary client key) and its route filled in once for every HTTP adapter."""
    return InferenceRequest(
        texts,
        client_key=lambda: client_key(request),
        request_id=request_id(request),
        tenant=tenant(request),
        route=route(request),
        **options,
    )


def request_id(request: Request) -> str:
    """The request's X-Request-ID, as the observability middleware gave it."""
    state: dict[str, str] = request.scope.get("state", {})
    return state.get("request_id", "")


def tenant(request: Request) -> Tenant | None:
    """The tenant of the request's API key, as the policy middleware found it (None: keys are off)."""
    state: dict[str, Tenant | None] = request.scope.get("state", {})
    return state.get("tenant")


def route(request: Request) -> str:
    """The request's route template (for audit lines)."""
    match = request.scope.get(ROUTE_SCOPE_KEY)
    return match.policy.template if match is not None else request.url.path
