"""Corrections from users, stored beside the prediction records for the next training (`--feedback`)."""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, Request, status

from src.api.deps import DataPlaneDep, route, tenant
from src.api.routing import policy
from src.api.schemas import ErrorResponse, FeedbackRequest, FeedbackResponse
from src.serving.feedback_desk import Correction, FeedbackDesk

router = APIRouter(tags=["feedback"])


@router.post(
    "/feedback",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Correct a prediction",
    openapi_extra=policy(scope="feedback"),
    responses={
        403: {"model": ErrorResponse, "description": "The token was issued to another key, or the key lacks the scope"},
        404: {"model": ErrorResponse, "description": "No such model, or no prediction log to store feedback in"},
        409: {"model": ErrorResponse, "description": "The text was already corrected: the first correction stands"},
        422: {"model": ErrorResponse, "description": "A token malformed, forged or older than FEEDBACK_MAX_AGE"},
        429: {"model": ErrorResponse, "description": "The key is over its feedback_rate; retry after Retry-After"},
        503: {
            "model": ErrorResponse,
            "description": "The log's queue is full, or the shared state is down: send it again after Retry-After",
        },
    },
)
async def feedback(body: FeedbackRequest, plane: DataPlaneDep, request: Request) -> FeedbackResponse:
    """Store the right label for an answered text, with the `feedback_token` its answer carried
    (only the key that asked may give it, once per text). `ml-service train --feedback DIR
    --feedback-keys IDS` trains on the corrections of the keys it names."""
    desk: FeedbackDesk = request.app.state.feedback
    asker = tenant(request)
    correction = Correction(body.label, body.feedback_token, body.request_id, body.index, body.model)
    claims = desk.claims(correction, asker, request.app.state.access.enforced)
    name, predictor = plane.resolve(claims.model or None, None, asker, route(request))
    if not claims.version:  # the request-id form: the version serving now
        claims = replace(claims, version=predictor.version)
    stored = await desk.take(claims, body.label, name, predictor.classes)
    return FeedbackResponse.model_validate(stored)
