"""KServe's V1 protocol with plain HTTP requests, as its clients send them."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from src.api.main import create_app
from tests.conftest import SECOND_MODEL, make_settings

TEXTS = ["A wonderful, moving film.", "Dull, boring and far too long."]


def test_list_readiness_and_liveness_at_the_root(client: TestClient) -> None:
    assert client.get("/v1/models").json() == {"models": ["sentiment"]}
    assert client.get("/v1/models/sentiment").json() == {"name": "sentiment", "ready": True}
    missing = client.get("/v1/models/nope")
    assert missing.status_code == 404
    assert "no model named 'nope'" in missing.json()["error"]
    # KServe's V1 liveness reads {"status": "alive"} at the root; a browser still gets the playground.
    assert client.get("/", headers={"Accept": "*/*"}).json() == {"status": "alive"}
    page = client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["vary"] == "Accept"


def test_predict_answers_labels_as_kserves_sklearn_runtime(client: TestClient) -> None:
    instances = [TEXTS[0], {"text": TEXTS[1]}]
    response = client.post("/v1/models/sentiment:predict", json={"instances": instances})
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": ["positive", "negative"]}


def test_probabilities_when_asked_in_the_order_of_output_labels(client: TestClient) -> None:
    request = {"instances": TEXTS, "parameters": {"probabilities": True}}
    body = client.post("/v1/models/sentiment:predict", json=request).json()
    assert body["output_labels"] == ["negative", "positive"]
    expected = client.post("/predict/batch", json={"texts": TEXTS}).json()["predictions"]
    for row, result in zip(body["predictions"], expected, strict=True):
        assert row == pytest.approx([result["probabilities"][c] for c in body["output_labels"]])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "not valid JSON"),
        (b"[]", "must be a JSON object"),
        (b'{"inputs": ["x"]}', "needs 'instances'"),
        (b'{"instances": "a text"}', "instances must be a list"),
        (b'{"instances": [1]}', "instances.0 must be a text, not int"),
        (b'{"instances": [{"body": "x", "title": "y"}]}', "has no 'text' field"),
        (b'{"instances": []}', "at least one text is needed"),
        (b'{"instances": [" "]}', "non-whitespace character (at instances.0)"),
        (b'{"instances": ["x"], "signature": 1}', "unknown field 'signature'"),
        (b'{"instances": ["x"], "parameters": {"probabilities": "yes"}}', "must be true or false"),
        (b'{"instances": ["x"], "parameters": {"top_k": 3}}', "may hold only 'probabilities'"),
    ],
)
def test_a_malformed_request_is_a_400_naming_the_problem(client: TestClient, body: bytes, message: str) -> None:
    response = client.post("/v1/models/sentiment:predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_too_many_instances_are_refused_before_any_is_read(model_dir: Path) -> None:
    with TestClient(create_app(make_settings(model_dir, max_batch_size=2))) as small:
        response = small.post("/v1/models/sentiment:predict", json={"instances": [{"no": "text"}] * 3})
    assert response.status_code == 400
    assert "batch has 3 texts; the limit is 2" in response.json()["error"]


def test_a_named_model_and_keys_as_on_every_route(two_models_dir: Path) -> None:
    with TestClient(create_app(make_settings(two_models_dir, api_keys="k"))) as keyed:
        path = f"/v1/models/{SECOND_MODEL}:predict"
        assert keyed.post(path, json={"instances": ["x"]}).status_code == 401
        assert keyed.get("/v1/models").status_code == 401
        answer = keyed.post(path, json={"instances": ["spam spam"]}, headers={"X-API-Key": "k"})
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["predictions"]) == 1
        # A model's readiness names the model: it needs a key (the server's probes do not).
        assert keyed.get("/v1/models/sentiment").status_code == 401
        assert keyed.get("/v1/models/sentiment", headers={"X-API-Key": "k"}).status_code == 200
