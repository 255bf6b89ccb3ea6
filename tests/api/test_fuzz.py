"""Schemathesis generates requests from the app's own OpenAPI schema: no 5xx, no answer off the schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.schemas import OpenApiSchema

from src.api.main import create_app
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def api_schema(model_dir: Path) -> OpenApiSchema:
    app = create_app(make_settings(model_dir, admin_api_keys="fuzz-admin-key"))
    app.state.models.load_all()
    assert app.state.models.default.predictor is not None
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_every_operation_is_fuzzed(api_schema: OpenApiSchema) -> None:
    operations = set()
    for result in api_schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an Err means an invalid schema: fail loudly
        operations.add(f"{operation.method.upper()} {operation.path}")
    assert {
        "POST /predict",
        "POST /predict/batch",
        "GET /health/ready",
        "POST /model/reload",
        "POST /models/{name}/predict",
    } <= operations


@pytest.mark.parametrize(
    "operation",
    ["POST /predict", "POST /predict/batch", "GET /health", "GET /health/live", "GET /health/ready", "GET /model",
     "POST /model/reload", "GET /metrics", "GET /models", "GET /models/{name}", "POST /models/{name}/predict",
     "POST /models/{name}/predict/batch"],
)  # fmt: skip
def test_operation_conforms_to_the_schema(api_schema: OpenApiSchema, operation: str) -> None:
    method, path = operation.split()
    strategy = api_schema[path][method].as_strategy()

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=strategy)
    def check(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate()

    check()
