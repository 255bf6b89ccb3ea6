"""Route policy comes from the routes: the key's scope, shedding and the OpenAPI security all agree."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from src.api.main import create_app
from src.api.routing import KEYED, SHED, UNMEASURED, RouteTable
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


# Every route that takes a body, with the media types it takes: JSON unless the protocol says otherwise.
BODIES = {
    **dict.fromkeys(SCORING - {"/invocations", "/models/{name}/invocations"}, ("application/json",)),
    "/v2/models/{name}/infer": ("application/json", "application/octet-stream"),
    "/v2/models/{name}/versions/{version}/infer": ("application/json", "application/octet-stream"),
    "/invocations": ("application/json", "text/csv"),
    "/models/{name}/invocations": ("application/json", "text/csv"),
    "/feedback": ("application/json",),
    "/model/reload": ("application/json",),
    "/v2/repository/index": ("application/json",),
    "/v2/repository/models/{name}/load": ("application/json",),
    "/v2/repository/models/{name}/unload": ("application/json",),
}
TEXT_ROUTES = {
    "/predict": ({"text": "fine"}, "detail"),
    "/predict/batch": ({"texts": ["fine"]}, "detail"),
    "/v2/models/sentiment/infer": (
        {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["fine"]}]},
        "error",
    ),
    "/v1/models/sentiment:predict": ({"instances": ["fine"]}, "error"),
    "/invocations": ({"instances": ["fine"]}, "message"),
}


def test_media_types_are_declared_once_and_checked_alike(client: TestClient) -> None:
    table: RouteTable = client.app.state.routes  # type: ignore[attr-defined]
    declared = {p.template: p.accepts for p in table.policies() if p.accepts}
    assert declared == BODIES
    for path, (body, field) in TEXT_ROUTES.items():
        refused = client.post(path, content=json.dumps(body), headers={"Content-Type": "text/plain"})
        assert refused.status_code == 415, path
        accepted = " or ".join(BODIES[table.match(path).policy.template])  # type: ignore[union-attr]
        assert f"Content-Type must be {accepted}, not 'text/plain'" in refused.json()[field], path
        # No Content-Type at all is the route's first type (tritonclient sends none), on every route.
        assert client.post(path, content=json.dumps(body)).status_code == 200, path
        typed = client.post(path, content=json.dumps(body), headers={"Content-Type": "Application/JSON; charset=utf-8"})
        assert typed.status_code == 200, path


def test_every_not_ready_answer_carries_retry_after(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path / "empty"))) as client:
        for path in ("/health/ready", "/v1/models/sentiment", "/ping", "/predict"):
            answer = client.request("POST" if path == "/predict" else "GET", path, json={"text": "a"})
            assert answer.status_code == 503, path
            assert answer.headers["Retry-After"] == "5", path


def test_the_probes_and_the_scrape_are_not_measured_by_their_policy(client: TestClient) -> None:
    table: RouteTable = client.app.state.routes  # type: ignore[attr-defined]
    assert table.paths(UNMEASURED) == {"/metrics", "/health", "/health/live", "/health/ready"}
    for path in ("/health", "/health/live", "/health/ready", "/metrics", "/v2/health/live"):
        client.get(path)
    scraped = client.get("/metrics").text
    assert 'route="/v2/health/live"' in scraped
    assert 'route="/health/live"' not in scraped
    assert 'route="/metrics"' not in scraped
