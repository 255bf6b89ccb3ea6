"""The baseline: a server written the seed's way, to measure ml-service against.

FastAPI, a sync endpoint, `pipeline.predict_proba` per request, the model loaded once from the same
store. Run: MODEL_DIR=models uvicorn bench.naive_server:app --workers 2
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from src.store.registry import ModelRegistry

app = FastAPI()
_pipeline = ModelRegistry(os.environ.get("MODEL_DIR", "models")).resolve().load().pipeline


class Review(BaseModel):
    """The request body."""

    text: str


@app.post("/predict")
def predict(review: Review) -> dict[str, Any]:
    """Label and probabilities from scikit-learn, one call per request."""
    probabilities = _pipeline.predict_proba([review.text])[0]
    classes = [str(c) for c in _pipeline.classes_]
    best = int(probabilities.argmax())
    return {"label": classes[best], "probabilities": dict(zip(classes, map(float, probabilities), strict=True))}
