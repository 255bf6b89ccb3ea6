"""Error responses: one format per protocol, and the app's exception handlers that pick it.

The JSON routes answer `{"detail": ...}` (FastAPI's shape: a list of `{loc, msg, type}` for a broken
rule); the Open Inference Protocol (and KServe's V1) answers `{"error": "..."}` and a broken rule with
400, as its specification says; MLflow's scoring protocol answers `{"error_code", "message"}`, a broken
rule with 400 BAD_REQUEST. Every 503 carries Retry-After. A bug is logged with the request id and
answered 500 without internals, in the route's own format.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response
from starlette.types import Scope

from src.documents import encode_json
from src.errors import RETRY_AFTER_SECONDS, InvalidInputError, ServiceError

logger = logging.getLogger(__name__)

INTERNAL_ERROR = "internal server error"
ROUTE_SCOPE_KEY = "ml_service.route"  # the RouteMatch of a request (src/api/routing.py)


def _response(body: dict[str, Any], status: int, retry_after: int | None = None) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return Response(encode_json(body), status, headers, media_type="application/json")


def not_ready(body: dict[str, Any] | str) -> Response:
    """503 with the protocol's own not-ready body, and the Retry-After every 503 carries."""
    if isinstance(body, str):
        return Response(body, 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}, media_type="application/json")
    return _response(body, 503, RETRY_AFTER_SECONDS)


def _json_error(error: ServiceError) -> Response:
    return _response({"detail": error.detail}, error.status_code, error.retry_after)


def _json_internal(request_id: str) -> Response:
    return _response({"detail": INTERNAL_ERROR, "request_id": request_id}, 500)


def _v2_error(error: ServiceError) -> Response:
    if isinstance(error, InvalidInputError):
        return _response({"error": error.located}, 400, error.retry_after)
    return _response({"error": error.message}, error.status_code, error.retry_after)


def _v2_internal(request_id: str) -> Response:
    return _response({"error": f"{INTERNAL_ERROR} (request id {request_id})"}, 500)


@dataclass(frozen=True)
class ErrorFormat:
    """How one protocol writes an error: a domain error, and a bug (with the request id only)."""

    name: str
    render: Callable[[ServiceError], Response]
    internal: Callable[[str], Response]


# MLflow's error codes (mlflow.protos.databricks), by status.
_MLFLOW_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    409: "RESOURCE_ALREADY_EXISTS",
    413: "BAD_REQUEST",
    415: "BAD_REQUEST",
    429: "REQUEST_LIMIT_EXCEEDED",
    501: "NOT_IMPLEMENTED",
    503: "TEMPORARILY_UNAVAILABLE",
}


def _mlflow_error(error: ServiceError) -> Response:
    status = 400 if isinstance(error, InvalidInputError) else error.status_code
    message = error.located if isinstance(error, InvalidInputError) else error.message
    body = {"error_code": _MLFLOW_CODES.get(status, "INTERNAL_ERROR"), "message": message}
    return _response(body, status, error.retry_after)


def _mlflow_internal(request_id: str) -> Response:
    return _response({"error_code": "INTERNAL_ERROR", "message": f"{INTERNAL_ERROR} (request id {request_id})"}, 500)


JSON_ERRORS = ErrorFormat("json", _json_error, _json_internal)
V2_ERRORS = ErrorFormat("v2", _v2_error, _v2_internal)
MLFLOW_ERRORS = ErrorFormat("mlflow", _mlflow_error, _mlflow_internal)
FORMATS = {format_.name: format_ for format_ in (JSON_ERRORS, V2_ERRORS, MLFLOW_ERRORS)}


def format_of(scope: Scope) -> ErrorFormat:
    """The error format of the route a request was matched to; JSON when it matched none."""
    match = scope.get(ROUTE_SCOPE_KEY)
    return match.policy.errors if match is not None else JSON_ERRORS


def render_unexpected(scope: Scope, error: BaseException) -> Response:
    """A bug: logged in full with the request id; the client sees no internals."""
    request_id = scope.get("state", {}).get("request_id", "-")
    logger.error("request %s failed: %r", request_id, error, exc_info=error)
    return format_of(scope).internal(request_id)


def _message(error: dict[str, Any]) -> str:
    reason = error.get("ctx", {}).get("error")
    if error["type"] == "json_invalid" and isinstance(reason, str):
        return f"invalid JSON: {reason}"
    return str(error["msg"])


def render_validation(scope: Scope, error: RequestValidationError) -> Response:
    """Each field and rule broken, named, without echoing the input; 422 (JSON) or 400 (V2)."""
    errors = error.errors()
    errors_format = format_of(scope)
    if errors_format is not JSON_ERRORS:
        first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": "value_error"}
        return errors_format.render(InvalidInputError(_message(first), loc=tuple(first["loc"])))
    detail = [{"loc": list(e["loc"]), "msg": _message(e), "type": e["type"]} for e in errors]
    return _response({"detail": detail}, 422)


def install(app: FastAPI) -> None:
    """Register the handlers on an app: domain errors, validation errors, bugs."""

    async def service_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, ServiceError)
        return format_of(request.scope).render(error)

    async def validation_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        return render_validation(request.scope, error)

    async def unexpected_error(request: Request, error: Exception) -> Response:
        return render_unexpected(request.scope, error)

    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected_error)
