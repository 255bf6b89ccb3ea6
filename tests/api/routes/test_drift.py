"""GET /models/{name}/drift: the window against the served version's reference, in one process."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from src.api.main import create_app
from src.model.datasets import Dataset
from tests.conftest import SECOND_MODEL, held_out, make_settings
from tests.tenants.test_keys import KEY_A, KEY_B, write_keys


def test_the_window_collects_then_judges(model_dir: Path, sample: Dataset) -> None:
    texts = held_out(sample, 2300)[2000:]  # the reference was measured on the first 2,000
    with TestClient(create_app(make_settings(model_dir, drift_min_texts=100))) as client:
        first = client.get("/models/sentiment/drift").json()
        assert first["status"] == "collecting"
        assert first["window"] == {"texts": 0, "size": 500, "min_texts": 100}
        assert first["reference"]["source"] == "held-out test split (2000 texts)"
        for start in range(0, 300, 50):
            assert client.post("/predict/batch", json={"texts": texts[start : start + 50]}).status_code == 200
        like_training = client.get("/models/sentiment/drift").json()
        assert like_training["window"]["texts"] == 300
        assert like_training["status"] == "ok", json.dumps(like_training["signals"])
        assert like_training["drifting"] is False
        gibberish = [f"zxq{i} vlorp{i} grentik{i} ooble" for i in range(300)]
        for start in range(0, 300, 50):
            client.post("/predict/batch", json={"texts": gibberish[start : start + 50]})
        moved = client.get("/models/sentiment/drift").json()
        assert moved["status"] == "drifting"
        assert moved["drifting"] is True
        assert moved["signals"]["oov"]["drifting"] is True
        assert moved["signals"]["oov"]["statistic"] > moved["signals"]["oov"]["threshold"]
        assert "mlservice_drift_drifting{" in client.get("/metrics").text
        assert moved["keys"] == {"none": 500}  # keys are off: nobody's


def test_the_window_says_which_key_sent_its_texts(model_dir: Path, tmp_path: Path) -> None:
    keys = write_keys(tmp_path / "keys.yaml", KEY_A + KEY_B)
    with TestClient(create_app(make_settings(model_dir, api_keys_file=keys))) as client:
        assert client.post(
            "/predict/batch", json={"texts": ["good"] * 12}, headers={"X-API-Key": "secret-a"}
        ).is_success
        assert client.post("/predict/batch", json={"texts": ["bad"] * 5}, headers={"X-API-Key": "secret-b"}).is_success
        drift = client.get("/models/sentiment/drift", headers={"X-API-Key": "secret-b"}).json()
        assert drift["keys"] == {"team-b": 5, "others": 12}  # a key sees its own count, not the others' ids


def test_a_version_without_a_profile_says_so(two_models_client: TestClient) -> None:
    answer = two_models_client.get(f"/models/{SECOND_MODEL}/drift")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "no_reference"
    assert body["drifting"] is False
    assert "no reference profile" in body["reason"]
    assert two_models_client.get("/models/nope/drift").status_code == 404


def test_errors_are_logged_too(model_dir: Path, tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(model_dir, prediction_log_dir=tmp_path))) as client:
        assert client.post("/predict", json={"text": "   "}).status_code == 422
        assert client.post("/models/nope/predict", json={"text": "fine"}).status_code == 404
        infer = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["fine"]}]}
        assert client.post("/v2/models/sentiment/infer", json=infer).status_code == 200
    records = [json.loads(line) for line in next(tmp_path.glob("predictions-*.jsonl")).read_text().splitlines()]
    assert [(r["status"], r["model"], r["protocol"]) for r in records] == [
        (422, "sentiment", "json"),
        (404, None, "json"),
        (200, "sentiment", "v2"),
    ]
    assert records[0]["version"] == records[2]["version"]
    assert "non-whitespace" in records[0]["error"]
