from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from src.serving.predictor import Predictor
from src.store.store import StoredModel
from tests.conftest import SECOND_MODEL


def test_predict_returns_label_probabilities_and_version(client: TestClient, stored: StoredModel) -> None:
    response = client.post("/predict", json={"text": "An outstanding, beautiful film."})
    assert response.status_code == 200
    body = response.json()
    assert body["label"] == "positive"
    assert set(body["probabilities"]) == {"negative", "positive"}
    assert sum(body["probabilities"].values()) == pytest.approx(1.0)
    assert body["model_version"] == stored.version
    assert response.headers["x-request-id"]


def test_predict_equals_the_model(client: TestClient, stored: StoredModel) -> None:
    text = "It was fine, I guess, though the ending dragged."
    body = client.post("/predict", json={"text": text}).json()
    expected = stored.pipeline.predict_proba([text])[0]
    assert body["probabilities"]["positive"] == pytest.approx(expected[1], abs=1e-9)


def test_batch_keeps_order(client: TestClient, stored: StoredModel) -> None:
    texts = ["Loved it!", "Hated it.", "Wonderful acting", "Dreadful and dull"]
    response = client.post("/predict/batch", json={"texts": texts})
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == stored.version
    expected = Predictor(stored).predict_batch(texts)
    assert [p["label"] for p in body["predictions"]] == [e.label for e in expected]
    assert [p["label"] for p in body["predictions"]] == ["positive", "negative", "positive", "negative"]


def test_large_batch_is_scored_off_the_event_loop_with_the_same_results(client: TestClient) -> None:
    texts = [("great film " * 400).strip(), ("awful film " * 400).strip()] * 20
    body = client.post("/predict/batch", json={"texts": texts}).json()
    assert [p["label"] for p in body["predictions"]] == ["positive", "negative"] * 20


def test_request_id_from_the_client_is_kept_when_sane(client: TestClient) -> None:
    kept = client.post("/predict", json={"text": "ok"}, headers={"X-Request-ID": "abc-123"})
    assert kept.headers["x-request-id"] == "abc-123"
    replaced = client.post("/predict", json={"text": "ok"}, headers={"X-Request-ID": "bad id; <script>" * 10})
    assert len(replaced.headers["x-request-id"]) == 32


def test_explain_adds_exact_shares_and_default_stays_lean(client: TestClient, stored: StoredModel) -> None:
    text = "A wonderful film with a boring ending."
    plain = client.post("/predict", json={"text": text}).json()
    assert "explanation" not in plain
    explained = client.post("/predict", json={"text": text, "explain": True}).json()
    assert explained["label"] == plain["label"]
    assert explained["probabilities"] == plain["probabilities"]
    explanation = explained["explanation"]
    decision = stored.pipeline.decision_function([text])[0]
    assert explanation["scores"]["positive"] == pytest.approx(decision, abs=1e-9)
    assert {"negative", "positive"} == set(explanation["towards"])
    assert all({"term", "weight", "contributions"} <= set(term) for term in explanation["terms"])


def test_batch_explain(client: TestClient) -> None:
    body = client.post("/predict/batch", json={"texts": ["great", "awful"], "explain": True}).json()
    assert [p["explanation"]["towards"]["positive"][:1] != [] for p in body["predictions"]] == [True, False]


def test_named_models_answer_with_their_own_classes(two_models_client: TestClient) -> None:
    tweet = "@jess omg cant wait for tonight!!! lol"
    review = "The director's pacing drags in the second act, though the lead performance is superb."
    named = two_models_client.post(f"/models/{SECOND_MODEL}/predict/batch", json={"texts": [review, tweet]})
    assert named.status_code == 200
    assert [p["label"] for p in named.json()["predictions"]] == ["review", "tweet"]
    default = two_models_client.post("/models/sentiment/predict", json={"text": review}).json()
    assert default == two_models_client.post("/predict", json={"text": review}).json()
    assert set(default["probabilities"]) == {"negative", "positive"}
    explained = two_models_client.post(f"/models/{SECOND_MODEL}/predict", json={"text": tweet, "explain": True})
    assert explained.json()["explanation"]["terms"]


def test_named_model_errors(two_models_client: TestClient) -> None:
    missing = two_models_client.post("/models/topics/predict", json={"text": "fine"})
    assert missing.status_code == 404
    assert "no model named 'topics'" in missing.json()["detail"]
    invalid = two_models_client.post(f"/models/{SECOND_MODEL}/predict", json={"txt": "fine"})
    assert invalid.status_code == 422
    assert two_models_client.post("/models/a/b/predict", json={"text": "x"}).status_code == 404
    metrics = two_models_client.get("/metrics").text
    assert 'route="/models/{name}/predict",status="404"' in metrics


def test_predictions_are_counted_per_model(two_models_client: TestClient) -> None:
    two_models_client.post(f"/models/{SECOND_MODEL}/predict", json={"text": "lol"})
    metrics = two_models_client.get("/metrics").text
    assert f'mlservice_predictions_total{{label="tweet",model="{SECOND_MODEL}"}}' in metrics
    assert f'mlservice_model_ready{{model="{SECOND_MODEL}"}} 1.0' in metrics
    assert 'mlservice_model_ready{model="sentiment"} 1.0' in metrics


def test_an_unknown_model_name_is_not_echoed_at_length(two_models_client: TestClient) -> None:
    answer = two_models_client.post("/models/" + "x" * 10_000 + "/predict", json={"text": "fine"})
    assert answer.status_code == 404
    assert len(answer.text) < 300
