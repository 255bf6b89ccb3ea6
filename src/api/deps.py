"""Dependencies that routes declare by type: the served models.

All are `async def`: FastAPI runs a plain `def` dependency in a thread pool, a hop per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from src.serving.served_models import ServedModels


async def get_models(request: Request) -> ServedModels:
    """The process's served models."""
    models: ServedModels = request.app.state.models
    return models


ModelsDep = Annotated[ServedModels, Depends(get_models)]
