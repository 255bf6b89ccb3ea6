from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from src import metrics
from src.api.main import create_app
from tests.conftest import make_settings

BODY = {"text": "A wonderful film."}


def test_keys_are_off_by_default(client: TestClient) -> None:
    assert client.post("/predict", json=BODY).status_code == 200


def test_prediction_keys(model_dir: Path) -> None:
    with TestClient(create_app(make_settings(model_dir, api_keys="first-key, second-key"))) as client:
        missing = client.post("/predict", json=BODY)
        assert missing.status_code == 401
        assert "X-API-Key" in missing.json()["detail"]
        assert client.post("/predict", json=BODY, headers={"X-API-Key": "wrong"}).status_code == 403
        assert client.post("/predict", json=BODY, headers={"X-API-Key": "second-key"}).status_code == 200
        batch = client.post("/predict/batch", json={"texts": ["a"]}, headers={"X-API-Key": "first-key"})
        assert batch.status_code == 200
        assert client.post("/predict/batch", json={"texts": ["a"]}).status_code == 401
        assert client.get("/health/ready").status_code == 200  # probes need no key
        assert "first-key" not in client.get("/metrics").text
        # The model's metadata (data sources, hashes, evaluation) is for key holders too.
        assert client.get("/model").status_code == 401
        assert client.get("/model", headers={"X-API-Key": "first-key"}).json()["version"]


def test_admin_endpoints_always_need_a_key(client: TestClient) -> None:
    assert client.post("/model/reload").status_code == 401
    refused = client.post("/model/reload", headers={"X-API-Key": "anything"})
    assert refused.status_code == 403
    assert "ADMIN_API_KEYS" in refused.json()["detail"]


def test_admin_reload_with_a_key(model_dir: Path) -> None:
    with TestClient(create_app(make_settings(model_dir, admin_api_keys="admin-secret"))) as client:
        assert client.post("/model/reload", headers={"X-API-Key": "nope"}).status_code == 403
        answer = client.post("/model/reload", headers={"X-API-Key": "admin-secret"})
        assert answer.status_code == 200
        assert answer.json()["reloaded"] is False  # CURRENT is what it serves already
        assert answer.json()["model_version"] == client.get("/health").json()["model_version"]


def test_access_log_is_one_json_line_without_secrets(model_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(model_dir, access_log=True, api_keys="key-that-must-not-leak")
    with TestClient(create_app(settings)) as client, caplog.at_level(logging.INFO, logger="src.access"):
        response = client.post(
            "/predict", json={"text": "secret body text"}, headers={"X-API-Key": "key-that-must-not-leak"}
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "src.access"]
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["request_id"] == response.headers["x-request-id"]
    assert (entry["method"], entry["path"], entry["status"]) == ("POST", "/predict", 200)
    assert "key-that-must-not-leak" not in lines[0]
    assert "secret body text" not in lines[0]


def test_access_log_is_off_by_default(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="src.access"):
        client.post("/predict", json=BODY)
    assert not [r for r in caplog.records if r.name == "src.access"]


def test_overload_sheds_predictions_but_not_probes(model_dir: Path) -> None:
    with TestClient(create_app(make_settings(model_dir, max_pending_requests=1))) as client:
        before = metrics.totals(metrics.REQUESTS_SHED)  # the counter is the process's: other tests shed too
        shed = client.post("/predict", json=BODY)
        assert shed.status_code == 503
        assert shed.headers["retry-after"]
        assert "MAX_PENDING_REQUESTS" in shed.json()["detail"]
        assert client.get("/health/ready").status_code == 200
        assert client.get("/health/live").status_code == 200
        assert metrics.totals(metrics.REQUESTS_SHED) == before + 1
        assert "mlservice_requests_shed_total " in client.get("/metrics").text
