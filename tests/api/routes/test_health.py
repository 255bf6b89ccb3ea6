from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from src.api.main import create_app
from tests.conftest import make_settings


def test_ready_with_a_model(client: TestClient) -> None:
    assert client.get("/health/live").status_code == 200
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert health["model_loaded"] is True
    assert health["engine"] == "compiled"
    assert health["reason"] is None


def _unreadable(tmp_path: Path) -> Path:
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "CURRENT").mkdir()  # reading CURRENT fails even for root
    return locked


@pytest.mark.parametrize(
    ("make_dir", "reason"),
    [
        (lambda tmp: tmp / "missing", "no version published yet"),
        (lambda tmp: tmp, "no version published yet"),
        (_unreadable, "cannot read"),
    ],
    ids=["missing", "empty", "unreadable"],
)
def test_no_usable_model_means_up_but_not_ready(tmp_path: Path, make_dir: object, reason: str) -> None:
    model_dir = make_dir(tmp_path)  # type: ignore[operator]
    with TestClient(create_app(make_settings(model_dir))) as client:
        assert client.get("/health/live").status_code == 200
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.headers["retry-after"]
        assert reason in ready.json()["detail"]
        health = client.get("/health").json()
        assert health["status"] == "not_ready"
        assert health["model_loaded"] is False
        assert reason in health["reason"]
        predict = client.post("/predict", json={"text": "good"})
        assert predict.status_code == 503
        assert reason in predict.json()["detail"]
        assert client.get("/model").status_code == 503
