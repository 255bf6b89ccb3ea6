"""Dependencies that routes declare by type: settings, the model state, the serving predictor."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from src.api.model_state import ModelState
from src.config import Settings
from src.errors import UnsupportedMediaTypeError
from src.model.predictor import Predictor


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_model_state(request: Request) -> ModelState:
    """The process's model state."""
    state: ModelState = request.app.state.model_state
    return state


def get_predictor(state: Annotated[ModelState, Depends(get_model_state)]) -> Predictor:
    """The predictor serving now; 503 when no verified model is loaded."""
    return state.require()


def require_json(request: Request) -> None:
    """415 unless the body is declared JSON."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        raise UnsupportedMediaTypeError(f"Content-Type must be application/json, not {content_type or 'missing'}")


SettingsDep = Annotated[Settings, Depends(get_settings)]
ModelStateDep = Annotated[ModelState, Depends(get_model_state)]
PredictorDep = Annotated[Predictor, Depends(get_predictor)]
