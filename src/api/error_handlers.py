"""One place that turns every error into a JSON `{"detail": ...}` response."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from src.errors import ServiceError

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "5"


async def service_error(request: Request, error: Exception) -> JSONResponse:
    """A domain error: its own status and message (Starlette finds this handler for every subclass)."""
    assert isinstance(error, ServiceError)
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if error.status_code == 503 else None
    return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=headers)


async def validation_error(request: Request, error: Exception) -> JSONResponse:
    """422 naming each field and rule broken; the offending input is not echoed back."""
    assert isinstance(error, RequestValidationError)
    detail = [{"loc": list(e["loc"]), "msg": _message(e), "type": e["type"]} for e in error.errors()]
    return JSONResponse({"detail": detail}, status_code=422)


def _message(error: dict[str, Any]) -> str:
    reason = error.get("ctx", {}).get("error")
    if error["type"] == "json_invalid" and isinstance(reason, str):
        return f"invalid JSON: {reason}"
    return str(error["msg"])


async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
    """A bug: logged in full with the request id; the client sees no internals."""
    request_id = request.scope.get("state", {}).get("request_id", "-")
    logger.error("request %s failed: %r", request_id, error, exc_info=error)
    return JSONResponse({"detail": "internal server error", "request_id": request_id}, status_code=500)


def install(app: FastAPI) -> None:
    """Register the handlers on an app."""
    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected_error)
