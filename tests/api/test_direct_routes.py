from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from src.api.routes.predict import DIRECT_ROUTES
from src.serving.predictor import Predictor


def test_prediction_routes_are_served_directly_and_still_documented(client: TestClient) -> None:
    assert set(DIRECT_ROUTES) == {
        ("POST", "/predict"),
        ("POST", "/predict/batch"),
        ("POST", "/models/{name}/predict"),
        ("POST", "/models/{name}/predict/batch"),
    }
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/predict", "/predict/batch", "/models/{name}/predict", "/models/{name}/predict/batch"):
        assert "requestBody" in paths[path]["post"]
    named = paths["/models/{name}/predict"]["post"]
    assert [p["name"] for p in named["parameters"]] == ["name"]
    assert "404" in named["responses"]


def test_a_bug_is_a_500_without_internals_and_logged_with_the_request_id(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: Predictor, texts: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(Predictor, "predict_batch", broken)
    with caplog.at_level(logging.ERROR):
        response = client.post("/predict", json={"text": "fine"}, headers={"X-Request-ID": "trace-me"})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error", "request_id": "trace-me"}
    assert "secret internal detail" not in response.text
    assert any("trace-me" in record.getMessage() for record in caplog.records)
    assert 'status="500"' in client.get("/metrics").text
