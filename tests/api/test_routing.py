"""The route table: every route's policy read once, requests matched with Starlette's compiled regexes."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from src.api.error_responses import JSON_ERRORS, V2_ERRORS
from src.api.routing import RouteTable
from src.serving import dataplane
from tests.api.test_route_policy import SCORING

DIRECT = SCORING  # every scoring route is dispatched directly


def test_paths_match_their_route_once_with_parameters(client: TestClient) -> None:
    table: RouteTable = client.app.state.routes  # type: ignore[attr-defined]
    predict = table.match("/predict")
    assert predict is not None
    assert (predict.policy.template, predict.path_params) == ("/predict", {})
    named = table.match("/v2/models/kinds/versions/v1/infer")
    assert named is not None
    assert named.policy.template == "/v2/models/{name}/versions/{version}/infer"
    assert named.path_params == {"name": "kinds", "version": "v1"}
    assert named.policy.errors is V2_ERRORS
    assert table.match("/models/a/b/predict") is None  # a parameter is one path segment
    assert table.match("/nowhere") is None
    health = table.match("/health")
    assert health is not None
    assert health.policy.errors is JSON_ERRORS
    assert not health.policy.keyed


def test_the_prediction_routes_are_dispatched_directly_and_still_documented(client: TestClient) -> None:
    table: RouteTable = client.app.state.routes  # type: ignore[attr-defined]
    direct = {p.template for p in [m.policy for m in table.literal.values()] + [p for _, p in table.templated]
              if p.handlers}  # fmt: skip
    assert direct == DIRECT
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/predict", "/predict/batch", "/models/{name}/predict", "/models/{name}/predict/batch"):
        assert "requestBody" in paths[path]["post"]
    named = paths["/models/{name}/predict"]["post"]
    assert [p["name"] for p in named["parameters"]] == ["name"]
    assert "404" in named["responses"]


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/predict", {"text": "fine"}, {"detail": "internal server error", "request_id": "trace-me"}),
        (
            "/v2/models/sentiment/infer",
            {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["fine"]}]},
            {"error": "internal server error (request id trace-me)"},
        ),
    ],
)
def test_a_bug_is_a_500_without_internals_in_the_routes_format_and_logged(
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    path: str,
    body: dict[str, object],
    expected: dict[str, str],
) -> None:
    def broken(model: str, predictions: object) -> None:  # a bug of ours after the model has scored
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(dataplane, "_observe", broken)
    with caplog.at_level(logging.ERROR):
        response = client.post(path, json=body, headers={"X-Request-ID": "trace-me"})
    assert response.status_code == 500
    assert response.json() == expected
    assert "secret internal detail" not in response.text
    assert any("trace-me" in record.getMessage() for record in caplog.records)
    assert 'status="500"' in client.get("/metrics").text
