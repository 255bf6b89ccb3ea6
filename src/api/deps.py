"""Dependencies that routes declare by type: the model state and the serving predictor.

All are `async def`: FastAPI runs a plain `def` dependency in a thread pool, a hop per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from src.api.model_state import ModelState
from src.model.predictor import Predictor


async def get_model_state(request: Request) -> ModelState:
    """The process's model state."""
    state: ModelState = request.app.state.model_state
    return state


async def get_predictor(state: Annotated[ModelState, Depends(get_model_state)]) -> Predictor:
    """The predictor serving now; 503 when no verified model is loaded."""
    return state.require()


ModelStateDep = Annotated[ModelState, Depends(get_model_state)]
PredictorDep = Annotated[Predictor, Depends(get_predictor)]
