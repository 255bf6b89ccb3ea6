"""POST /feedback: stored beside the prediction records, keyed like predictions, checked against the model."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from src.api.main import create_app
from tests.conftest import make_settings


def test_feedback_is_stored_for_a_logged_prediction(model_dir: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    with TestClient(create_app(make_settings(model_dir, prediction_log_dir=logs))) as client:
        answer = client.post("/predict", json={"text": "a dull, tired film"})
        request_id = answer.headers["x-request-id"]
        stored = client.post("/feedback", json={"request_id": request_id, "label": "negative"})
        assert stored.status_code == 202
        assert stored.json()["model"] == "sentiment"
        assert stored.json()["version"] == answer.json()["model_version"]
    (record,) = [json.loads(line) for line in next(logs.glob("predictions-*.jsonl")).read_text().splitlines()]
    assert record["request_id"] == request_id
    (correction,) = [json.loads(line) for line in next(logs.glob("feedback-*.jsonl")).read_text().splitlines()]
    assert (correction["request_id"], correction["index"], correction["label"]) == (request_id, 0, "negative")


def test_bad_feedback_gets_a_4xx_naming_the_problem(model_dir: Path, tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(model_dir, prediction_log_dir=tmp_path))) as client:
        wrong_label = client.post("/feedback", json={"request_id": "abc", "label": "meh"})
        assert wrong_label.status_code == 422
        assert "not one of model sentiment's classes: negative, positive" in wrong_label.text
        bad_id = client.post("/feedback", json={"request_id": "a b/c", "label": "negative"})
        assert bad_id.status_code == 422
        assert "request_id" in bad_id.text
        unknown = client.post("/feedback", json={"request_id": "abc", "label": "negative", "model": "nope"})
        assert unknown.status_code == 404
        extra = client.post("/feedback", json={"request_id": "abc", "label": "negative", "lable": "x"})
        assert extra.status_code == 422


def test_feedback_needs_the_prediction_log(client: TestClient) -> None:
    answer = client.post("/feedback", json={"request_id": "abc", "label": "negative"})
    assert answer.status_code == 404
    assert "PREDICTION_LOG_DIR" in answer.json()["detail"]


def test_feedback_needs_a_key_like_predictions(model_dir: Path, tmp_path: Path) -> None:
    settings = make_settings(model_dir, prediction_log_dir=tmp_path, api_keys="k1")
    with TestClient(create_app(settings)) as client:
        body = {"request_id": "abc", "label": "negative"}
        assert client.post("/feedback", json=body).status_code == 401
        assert client.post("/feedback", json=body, headers={"X-API-Key": "k1"}).status_code == 202
