"""End to end: the real training CLI, then real uvicorn, every endpoint over HTTP."""

from __future__ import annotations

import csv
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from src.model.datasets import Dataset
from src.model.trainer import ModelTrainer
from src.store.store import ModelStore
from tests.e2e.servers import (
    ROOT,
    free_port,
    production_command,
    production_env,
    request,
    running_server,
    uvicorn_command,
    wait_until,
)

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
    assert "published model sentiment version" in result.stdout
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
        assert "no version published yet" in ready.json()["detail"]
        assert request(server.url("/predict"), body={"text": "good"}).status == 503
    assert "not ready (store " in server.log()
    assert "no version published yet" in server.log()


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_a_model_trained_while_serving_is_served_beside_the_default(
    trained_store: Path, sample: Dataset, tmp_path: Path
) -> None:
    """A user's CSV, the real CLI with --name, the production server finding it at its next poll."""
    kinds = {"imdb": "review", "rotten_tomatoes": "review", "tweets": "tweet"}
    part = sample.where(lambda source: source in kinds).sample(2000, random_state=4)
    data = tmp_path / "kinds.csv"
    with data.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "kind"])
        writer.writerows((text, kinds[source]) for text, source in zip(part.texts, part.sources, strict=True))
    store = tmp_path / "models"
    shutil.copytree(trained_store, store)
    port = free_port()
    env = production_env(store, port, tmp_path, MODEL_POLL_SECONDS="1")
    with running_server(production_command(), port, env, tmp_path) as server:
        default = request(server.url("/predict"), body={"text": "Superb!"}).json()
        trained = _run(
            "src.model.train_script", "--data", str(data), "--label-column", "kind", "--name", "kinds",
            "--no-cross-source", "--model-dir", str(store),
        )  # fmt: skip
        assert trained.returncode == 0, trained.stderr[-2000:]
        assert "behaviour suite: skipped" in trained.stdout

        def served() -> bool:  # each request is a new connection, which either worker may take
            return all(
                request(server.url("/models/kinds/predict"), body={"text": "lol"}).status == 200
                and "kinds" in {m["name"] for m in request(server.url("/models")).json()}
                for _ in range(12)
            )

        wait_until(served, 20, "both workers serving the new model")
        listed = {m["name"]: m for m in request(server.url("/models")).json()}
        assert listed["kinds"]["classes"] == ["review", "tweet"]
        tweet = request(server.url("/models/kinds/predict"), body={"text": "omg cant wait lol!!! @jess"}).json()
        assert tweet["label"] == "tweet"
        again = request(server.url("/predict"), body={"text": "Superb!"}).json()
        assert again == default  # the default model is untouched
        listing = _run("src.model.store_cli", "--model-dir", str(store), "list")
        assert "kinds: " in listing.stdout
        assert "sentiment: " in listing.stdout


def test_the_old_layout_serves_and_migrates_under_a_running_server(trained: ModelTrainer, tmp_path: Path) -> None:
    """A store published before named models: served as the default model, moved while serving, no blip."""
    root = tmp_path / "models"
    old = ModelStore(root).publish(trained.pipeline_, {"classes": trained.classes_})
    port = free_port()
    env = production_env(root, port, tmp_path, MODEL_POLL_SECONDS="0.2")
    with running_server(production_command(), port, env, tmp_path) as server:
        assert request(server.url("/health")).json()["model_version"] == old
        moved = _run("src.model.store_cli", "--model-dir", str(root), "migrate")
        assert moved.returncode == 0, moved.stderr
        statuses = [request(server.url("/predict"), body={"text": "Superb!"}).status for _ in range(40)]
        assert statuses == [200] * 40
        assert request(server.url("/predict"), body={"text": "Superb!"}).json()["model_version"] == old
    assert (root / "sentiment" / old).is_dir()
    assert "rejected" not in server.log()
