"""End to end: the real training CLI, then real uvicorn, every endpoint over HTTP."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.servers import ROOT, free_port, request, running_server, uvicorn_command

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("e2e-models")
    command = [sys.executable, "-m", "src.model.train_script", "--sample", "4000", "--model-dir", str(store)]
    result = subprocess.run(
        [*command, "--tune", "--cv-sample", "1500", "--folds", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "accuracy:" in result.stdout
    assert "behaviour suite v1.0: 245 cases" in result.stdout
    assert "leave-one-source-out" in result.stdout
    assert "quality gate: PASS" in result.stdout
    assert "published model version" in result.stdout
    # progress on the slow steps
    assert "tuning by 2-fold cross-validation" in result.stderr
    assert "leave-one-source-out evaluation: done" in result.stderr
    return store


def test_every_endpoint_over_http(trained_store: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {"MODEL_DIR": str(trained_store), "MODEL_POLL_SECONDS": "0"}
    with running_server(uvicorn_command(port), port, env, tmp_path) as server:
        assert request(server.url("/health/ready")).status == 200
        health = request(server.url("/health")).json()
        assert health["model_loaded"] is True
        version = health["model_version"]

        one = request(server.url("/predict"), body={"text": "A truly wonderful and moving film."})
        assert one.status == 200
        assert one.json()["label"] == "positive"
        assert one.json()["model_version"] == version

        batch = request(server.url("/predict/batch"), body={"texts": ["Superb!", "Dreadful, boring, awful."]})
        assert [p["label"] for p in batch.json()["predictions"]] == ["positive", "negative"]

        assert request(server.url("/predict"), body={"text": " "}).status == 422
        assert request(server.url("/predict"), body={"texts": "x"}).status == 422
        assert request(server.url("/model")).json()["version"] == version
        assert request(server.url("/health/live")).status == 200
        metrics = request(server.url("/metrics")).body.decode()
        assert 'mlservice_http_requests_total{method="POST",route="/predict",status="200"} 1.0' in metrics
        openapi = request(server.url("/openapi.json")).json()
        assert {"/predict", "/predict/batch", "/health/ready", "/model", "/metrics"} <= set(openapi["paths"])
    # uvicorn shuts down gracefully, then re-raises SIGTERM so its exit says what ended it.
    assert server.process.returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in server.log()
    assert "Traceback" not in server.log()


def test_empty_store_serves_not_ready(tmp_path: Path) -> None:
    port = free_port()
    env = {"MODEL_DIR": str(tmp_path / "empty"), "MODEL_POLL_SECONDS": "0"}
    with running_server(uvicorn_command(port), port, env, tmp_path) as server:
        ready = request(server.url("/health/ready"))
        assert ready.status == 503
        assert "no model has been published" in ready.json()["detail"]
        assert request(server.url("/predict"), body={"text": "good"}).status == 503
    assert "not ready: no model has been published" in server.log()
