from __future__ import annotations

import os
from pathlib import Path

from fastapi.testclient import TestClient

from src.api.main import create_app
from src.store.store import StoredModel
from tests.conftest import SECOND_MODEL, make_settings


def test_model_metadata(client: TestClient, stored: StoredModel) -> None:
    body = client.get("/model").json()
    assert body["version"] == stored.version
    assert body["sha256"] == stored.metadata["sha256"]
    assert body["classes"] == ["negative", "positive"]
    assert body["engine"] == "compiled"
    assert body["dataset"]["rows"] > 0


def test_models_lists_every_served_model(two_models_client: TestClient) -> None:
    listed = two_models_client.get("/models").json()
    assert [(m["name"], m["default"], m["ready"], m["classes"]) for m in listed] == [
        ("sentiment", True, True, ["negative", "positive"]),
        (SECOND_MODEL, False, True, ["review", "tweet"]),
    ]
    named = two_models_client.get(f"/models/{SECOND_MODEL}").json()
    assert named["version"] == listed[1]["version"]
    assert named["classes"] == ["review", "tweet"]
    assert two_models_client.get("/model").json()["version"] == listed[0]["version"]
    missing = two_models_client.get("/models/topics")
    assert missing.status_code == 404
    assert "no model named 'topics'" in missing.json()["detail"]


def test_model_routes_need_a_key_when_keys_are_on(two_models_dir: Path) -> None:
    settings = make_settings(two_models_dir, api_keys="k1")
    with TestClient(create_app(settings)) as client:
        for path in ("/models", f"/models/{SECOND_MODEL}", "/model"):
            assert client.get(path).status_code == 401
            assert client.get(path, headers={"X-API-Key": "k1"}).status_code == 200
        named = client.post(f"/models/{SECOND_MODEL}/predict", json={"text": "hi"})
        assert named.status_code == 401


def test_reload_answers_for_every_model(two_models_dir: Path) -> None:
    with TestClient(create_app(make_settings(two_models_dir, admin_api_keys="admin"))) as client:
        body = client.post("/model/reload", headers={"X-API-Key": "admin"}).json()
    assert body["reloaded"] is False
    assert set(body["models"]) == {"sentiment", SECOND_MODEL}
    assert body["models"][SECOND_MODEL]["model_version"]
    assert list(body["workers"]) == [str(os.getpid())]  # one process: the reload is this process's alone
    assert body["missing"] == []
