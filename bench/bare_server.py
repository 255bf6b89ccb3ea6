"""The limit: one prediction over HTTP with no framework at all, to measure ml-service against.

A bare ASGI callable under the same uvicorn (httptools) as ml-service: read the body, json.loads,
score with the same compiled scorer of the same Pipeline, json.dumps. No validation, limits,
metrics, middleware or error handling: what one prediction over HTTP costs on this machine at least.
Run: MODEL_DIR=models uvicorn bench.bare_server:app --workers 1
"""

from __future__ import annotations

import json
import os

from starlette.types import Receive, Scope, Send

from src.engine.compiled import CompiledScorer
from src.store.registry import ModelRegistry

_pipeline = ModelRegistry(os.environ.get("MODEL_DIR", "models")).resolve().load().pipeline
_scorer = CompiledScorer(_pipeline)
_classes = [str(c) for c in _pipeline.classes_]
_HEADERS = [(b"content-type", b"application/json")]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """POST any path with {"text": ...}: the label and probabilities. GET: 200, for readiness."""
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["method"] != "POST":
        await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
        await send({"type": "http.response.body", "body": b"{}"})
        return
    probabilities = _scorer.probabilities(_scorer.weigh(json.loads(body)["text"]))
    best = max(range(len(_classes)), key=probabilities.__getitem__)
    answer = {"label": _classes[best], "probabilities": dict(zip(_classes, probabilities, strict=True))}
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": json.dumps(answer).encode()})
