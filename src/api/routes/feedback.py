"""Corrections from users, stored beside the prediction records for the next training (`--feedback`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from src.api.deps import DataPlaneDep
from src.api.routing import policy
from src.api.schemas import ErrorResponse, FeedbackRequest, FeedbackResponse
from src.errors import FeatureOffError, InvalidInputError, ServiceUnavailableError, quoted
from src.serving.prediction_log import PredictionLog

router = APIRouter(tags=["feedback"])


@router.post(
    "/feedback",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Correct a prediction",
    openapi_extra=policy(keyed=True),
    responses={
        404: {"model": ErrorResponse, "description": "No such model, or no prediction log to store feedback in"},
        503: {"model": ErrorResponse, "description": "The log's queue is full: send it again after Retry-After"},
    },
)
async def feedback(body: FeedbackRequest, plane: DataPlaneDep, request: Request) -> FeedbackResponse:
    """Store the right label for a text a prediction answered, keyed by that request's X-Request-ID
    (and `index` within a batch). `python -m src.model.train_script --feedback DIR` trains on them."""
    log: PredictionLog | None = request.app.state.prediction_log
    if log is None:
        raise FeatureOffError("feedback is stored beside the prediction log: set PREDICTION_LOG_DIR (or _URL)")
    name, predictor = plane.resolve(body.model)
    if body.label not in predictor.classes:
        raise InvalidInputError(
            f"label {quoted(body.label)} is not one of model {name}'s classes: {', '.join(predictor.classes)}",
            loc=("body", "label"),
        )
    stored = FeedbackResponse(
        request_id=body.request_id, index=body.index, label=body.label, model=name, version=predictor.version
    )
    if not log.feedback(stored.model_dump()):
        raise ServiceUnavailableError("the prediction log's queue is full; send the feedback again")
    return stored
