"""Dependencies that routes declare by type: the served models and the data plane.

All are `async def`: FastAPI runs a plain `def` dependency in a thread pool, a hop per request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import Depends, Request

from src.api.error_responses import ROUTE_SCOPE_KEY
from src.api.messages import header
from src.api.routing import MEDIA_TYPE_STATE_KEY
from src.errors import InvalidInputError
from src.serving.dataplane import DataPlane
from src.serving.inference import Inference, InferenceRequest
from src.serving.request_identity import client_key_from
from src.serving.served_models import ServedModels
from src.serving.text_rules import Location
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
    """What keeps a client on one version during a canary: ROLLOUT_KEY_HEADER's value (see request_identity),
    read from the request's header table (a Headers object costs more)."""
    return client_key_from(header(request.scope, request.app.state.rollout_key_header_bytes))


def inference_request(request: Request, texts: Sequence[str], **options: Any) -> InferenceRequest:
    """An HTTP request's InferenceRequest: its texts and options, with who sent it (request id, API key's
    tenant, canary client key) and its route filled in once for every HTTP adapter."""
    return InferenceRequest(
        texts,
        client_key=client_key(request),
        request_id=request_id(request),
        tenant=tenant(request),
        route=route(request),
        **options,
    )


async def infer(
    plane: DataPlane,
    asked: InferenceRequest,
    text_at: Callable[[int], Location],
    batch_at: Location,
) -> Inference:
    """The data plane's answer; a broken rule placed where this protocol's request holds the text (or batch)."""
    try:
        return await plane.infer(asked)
    except InvalidInputError as error:
        error.at(text_at, batch_at)
        raise


def request_id(request: Request) -> str:
    """The request's X-Request-ID, as the observability middleware gave it."""
    state: dict[str, str] = request.scope.get("state", {})
    return state.get("request_id", "")


def tenant(request: Request) -> Tenant | None:
    """The tenant of the request's API key, as the policy middleware found it (None: keys are off)."""
    state: dict[str, Tenant | None] = request.scope.get("state", {})
    return state.get("tenant")


def media_type(request: Request) -> str:
    """The body's media type, one its route takes, as the policy middleware found it."""
    state: dict[str, str] = request.scope.get("state", {})
    return state[MEDIA_TYPE_STATE_KEY]


def route(request: Request) -> str:
    """The request's route template (for audit lines)."""
    match = request.scope.get(ROUTE_SCOPE_KEY)
    return match.policy.template if match is not None else request.url.path
