"""Route policy comes from the routes: the key's scope, shedding and the OpenAPI security all agree."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from src.api.main import create_app
from src.api.routing import KEYED, SHED, RouteTable
from tests.conftest import SECOND_MODEL, make_settings

SCORING = {
    "/predict",
    "/predict/batch",
    "/models/{name}/predict",
    "/models/{name}/predict/batch",
    "/models/{name}/versions/{version}/predict",
    "/models/{name}/versions/{version}/predict/batch",
    "/v2/models/{name}/infer",
    "/v2/models/{name}/versions/{version}/infer",
    "/v1/models/{name}:predict",
    "/invocations",
    "/models/{name}/invocations",
}
METADATA = {
    "/model",
    "/models",
    "/models/{name}",
    "/models/{name}/rollout",
    "/models/{name}/drift",
    "/v2/models/{name}",
    "/v2/models/{name}/versions/{version}",
    "/v2/models/{name}/ready",
    "/v2/models/{name}/versions/{version}/ready",
    "/v1/models",
    "/v1/models/{name}",
}


SCOPES = {
    **dict.fromkeys(SCORING, "predict"),
    **dict.fromkeys(METADATA, "read"),
    "/feedback": "feedback",
    "/model/reload": "admin",
    "/v2/repository/index": "read",  # POST, as the protocol's repository extension has it
    "/v2/repository/models/{name}/load": "admin",
    "/v2/repository/models/{name}/unload": "admin",
}
KEYED_PATHS = set(SCOPES)


def _flagged(schema: dict[str, object], flag: str) -> dict[str, object]:
    paths = schema["paths"]
    assert isinstance(paths, dict)
    return {path: op[flag] for path, operations in paths.items() for op in operations.values() if op.get(flag)}


def test_the_routes_declare_exactly_the_expected_policy(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert _flagged(schema, KEYED) == SCOPES
    assert set(_flagged(schema, SHED)) == SCORING
    table: RouteTable = client.app.state.routes  # type: ignore[attr-defined]
    assert table.paths(KEYED) == KEYED_PATHS
    assert table.paths(SHED) == SCORING
    assert "securitySchemes" not in schema.get("components", {})  # keys are off: nothing to document


def test_with_keys_every_keyed_operation_is_documented_and_enforced(two_models_dir: Path) -> None:
    with TestClient(create_app(make_settings(two_models_dir, api_keys="k1"))) as client:
        schema = client.get("/openapi.json").json()
        assert schema["components"]["securitySchemes"]["ApiKey"]["name"] == "X-API-Key"
        secured = {
            path for path, operations in schema["paths"].items() for op in operations.values() if op.get("security")
        }
        assert secured == KEYED_PATHS
        for template in sorted(KEYED_PATHS - {"/model/reload"}):
            path = template.replace("{name}", SECOND_MODEL).replace("{version}", "v1")
            method = "GET" if template in METADATA else "POST"
            answer = client.request(method, path, content=b"{}", headers={"Content-Type": "application/json"})
            assert answer.status_code == 401, (template, answer.status_code)
        disabled = client.post("/model/reload", headers={"X-API-Key": "k1"})  # no key has the admin scope
        assert disabled.status_code == 403
        assert "no ADMIN_API_KEYS" in disabled.text
        # The probes need no key, and with keys on they name no model.
        for probe in ("/health/ready", "/health", "/v2/health/ready", "/health/live"):
            answer = client.get(probe)
            assert answer.status_code == 200, probe
            assert "sentiment" not in answer.text, probe
            assert SECOND_MODEL not in answer.text, probe
