"""The served model: its metadata, and the admin reload."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from src.api.deps import ModelStateDep, PredictorDep
from src.api.schemas import ErrorResponse

router = APIRouter()


async def require_admin(request: Request) -> None:
    """401 without an admin key, 403 with a wrong one (or when ADMIN_API_KEYS is empty)."""
    request.app.state.admin_keys.check(request)


@router.post(
    "/model/reload",
    tags=["model"],
    summary="Load the store's CURRENT model now (admin)",
    responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}},
)
async def reload_model(_: Annotated[None, Depends(require_admin)], state: ModelStateDep) -> dict[str, Any]:
    """Check the store at once instead of waiting for the next poll; needs an ADMIN_API_KEYS key.

    Answers which version this worker serves afterwards; with several workers, each reloads on its
    own poll, so call it once per worker or rely on MODEL_POLL_SECONDS.
    """
    reloaded = await state.reload_if_changed(retry_rejected=True)
    predictor = state.predictor
    return {
        "reloaded": reloaded,
        "model_version": predictor.version if predictor else None,
        "rejected_version": state.rejected_version,
    }


@router.get("/model", tags=["model"], summary="Metadata of the served model")
async def model_metadata(predictor: PredictorDep) -> dict[str, Any]:
    """What the store recorded when the model was published, plus how it is being scored."""
    return {**predictor.metadata, "version": predictor.version, "engine": predictor.engine}
