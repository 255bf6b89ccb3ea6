"""The served models: their list and metadata, and the admin reload."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from src.api.deps import ModelsDep
from src.api.routing import policy
from src.api.schemas import ErrorResponse, ModelSummary
from src.serving.predictor import Predictor

router = APIRouter(tags=["model"])


async def require_admin(request: Request) -> None:
    """401 without an admin key, 403 with a wrong one (or when ADMIN_API_KEYS is empty)."""
    request.app.state.admin_keys.check(request)


def _metadata(predictor: Predictor) -> dict[str, Any]:
    return {**predictor.metadata, "version": predictor.version, "engine": predictor.engine}


@router.post(
    "/model/reload",
    summary="Load the store's CURRENT versions now (admin)",
    responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}},
)
async def reload_model(_: Annotated[None, Depends(require_admin)], models: ModelsDep) -> dict[str, Any]:
    """Check the store at once instead of waiting for the next poll; needs an ADMIN_API_KEYS key.

    Finds newly published models and loads every changed CURRENT. Answers for the default model at the
    top level and for every model under `models`; with several workers, each reloads on its own poll,
    so call it once per worker or rely on MODEL_POLL_SECONDS.
    """
    reloaded = await models.reload_if_changed(retry_rejected=True)
    report = {
        name: {
            "reloaded": reloaded.get(name, False),
            "model_version": state.predictor.version if state.predictor else None,
            "rejected_version": state.rejected_version,
        }
        for name, state in sorted(models.models.items())
    }
    return {**report[models.default_name], "models": report}


@router.get("/model", summary="Metadata of the default model", openapi_extra=policy(keyed=True))
async def model_metadata(models: ModelsDep) -> dict[str, Any]:
    """What the store recorded when the default model was published, plus how it is being scored."""
    return _metadata(models.get().require())


@router.get("/models", summary="The served models", openapi_extra=policy(keyed=True))
async def list_models(models: ModelsDep) -> list[ModelSummary]:
    """Every model this server serves, the default one marked; a model not ready says why."""
    summaries = []
    for name, state in sorted(models.models.items()):
        predictor = state.predictor
        summaries.append(
            ModelSummary(
                name=name,
                default=name == models.default_name,
                ready=predictor is not None,
                version=predictor.version if predictor else None,
                classes=predictor.classes if predictor else [],
                engine=predictor.engine if predictor else None,
                reason=state.not_ready_reason,
            )
        )
    return summaries


@router.get(
    "/models/{name}",
    summary="Metadata of a named model",
    responses={404: {"model": ErrorResponse, "description": "No model of that name is served"}},
    openapi_extra=policy(keyed=True),
)
async def named_model_metadata(name: str, models: ModelsDep) -> dict[str, Any]:
    """What the store recorded when the model was published, plus how it is being scored."""
    return _metadata(models.get(name).require())
