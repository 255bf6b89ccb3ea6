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


def test_with_keys_only_the_token_of_the_askers_own_answer_is_taken(model_dir: Path, tmp_path: Path) -> None:
    settings = make_settings(model_dir, prediction_log_dir=tmp_path, api_keys="k1,k2")
    with TestClient(create_app(settings)) as client:
        answer = client.post("/predict", json={"text": "a dull, tired film"}, headers={"X-API-Key": "k1"})
        token = answer.json()["feedback_token"]
        assert answer.headers["x-feedback-token"] == token
        bare = {"request_id": answer.headers["x-request-id"], "label": "negative"}
        assert client.post("/feedback", json=bare).status_code == 401
        refused = client.post("/feedback", json=bare, headers={"X-API-Key": "k1"})
        assert refused.status_code == 422
        assert "feedback_token" in refused.text
        correction = {"feedback_token": token, "label": "negative"}
        foreign = client.post("/feedback", json=correction, headers={"X-API-Key": "k2"})
        assert foreign.status_code == 403
        assert "another key" in foreign.text
        payload, mac = token.split(".")
        forged = {"feedback_token": f"{payload}.{mac[::-1]}", "label": "negative"}
        assert client.post("/feedback", json=forged, headers={"X-API-Key": "k1"}).status_code == 422
        taken = client.post("/feedback", json=correction, headers={"X-API-Key": "k1"})
        assert taken.status_code == 202
        assert taken.json()["key"] == "api-key-1"
        again = client.post("/feedback", json={**correction, "label": "positive"}, headers={"X-API-Key": "k1"})
        assert again.status_code == 409
        assert "first correction stands" in again.text
    (stored,) = [json.loads(line) for line in next(tmp_path.glob("feedback-*.jsonl")).read_text().splitlines()]
    assert stored["label"] == "negative"
    assert stored["key"] == "api-key-1"
    assert stored["version"] == answer.json()["model_version"]
    assert len(stored["text_digest"]) == 32


def test_every_text_of_a_batch_has_its_own_token(model_dir: Path, tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(model_dir, prediction_log_dir=tmp_path))) as client:
        answer = client.post("/predict/batch", json={"texts": ["great", "awful", "great"]})
        tokens = [result["feedback_token"] for result in answer.json()["predictions"]]
        assert len(set(tokens)) == 3
        for index, token in enumerate(tokens):
            stored = client.post("/feedback", json={"feedback_token": token, "label": "negative"})
            assert stored.status_code == 202
            assert stored.json()["index"] == index
            assert stored.json()["key"] == "anonymous"


def test_feedback_can_be_off_with_the_log_on(model_dir: Path, tmp_path: Path) -> None:
    settings = make_settings(model_dir, prediction_log_dir=tmp_path, feedback_enabled=False)
    with TestClient(create_app(settings)) as client:
        answer = client.post("/predict", json={"text": "great"})
        assert "feedback_token" not in answer.json()
        refused = client.post("/feedback", json={"request_id": answer.headers["x-request-id"], "label": "negative"})
        assert refused.status_code == 404
        assert "FEEDBACK_ENABLED" in refused.json()["detail"]


def test_no_tokens_without_a_prediction_log(client: TestClient) -> None:
    answer = client.post("/predict", json={"text": "great"})
    assert "feedback_token" not in answer.json()
    assert "x-feedback-token" not in answer.headers
