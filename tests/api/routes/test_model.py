from __future__ import annotations

from fastapi.testclient import TestClient

from src.model.store import StoredModel


def test_model_metadata(client: TestClient, stored: StoredModel) -> None:
    body = client.get("/model").json()
    assert body["version"] == stored.version
    assert body["sha256"] == stored.metadata["sha256"]
    assert body["classes"] == ["negative", "positive"]
    assert body["engine"] == "compiled"
    assert body["dataset"]["rows"] > 0
