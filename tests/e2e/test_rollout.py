"""Rollouts against the production server (two workers, real HTTP): a canary pulled back by its
guard, sticky clients, versions side by side, a shadow no client sees, and a promote that fails no
request. The rollout is driven with the command line, as an operator would."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from src.model.datasets import Dataset
from src.model.trainer import ModelTrainer
from src.store.registry import ModelRegistry
from tests.e2e.servers import (
    ROOT,
    Server,
    free_port,
    production_command,
    production_env,
    request,
    running_server,
    wait_until,
)

pytestmark = pytest.mark.e2e
TEXTS = ["A wonderful, moving film.", "Dull, boring and far too long.", "I loved every minute", "Awful service"]


@pytest.fixture(scope="module")
def versions(sample: Dataset) -> tuple[ModelTrainer, ModelTrainer, ModelTrainer]:
    """CURRENT, a sound candidate (another sample), and one trained on flipped labels."""
    part = sample.sample(4000, random_state=1)
    other = sample.sample(4000, random_state=2)
    flipped = ["positive" if label == "negative" else "negative" for label in part.labels]
    return (
        ModelTrainer().train(part.texts, part.labels),
        ModelTrainer().train(other.texts, other.labels),
        ModelTrainer().train(part.texts, flipped),
    )


@pytest.fixture
def store(tmp_path: Path, versions: tuple[ModelTrainer, ModelTrainer, ModelTrainer]) -> tuple[Path, list[str]]:
    root = tmp_path / "models"
    published = [trainer.save_model(root) for trainer in versions]
    ModelRegistry(root).store().activate(published[0])
    return root, published


@pytest.fixture
def server(store: tuple[Path, list[str]], tmp_path: Path) -> Iterator[Server]:
    root, _ = store
    port = free_port()
    env = production_env(root, port, tmp_path, MODEL_POLL_SECONDS="0.3", ROLLOUT_MIN_REQUESTS="40")
    with running_server(production_command(), port, env, tmp_path, ready_path="/health/ready") as running:
        yield running


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "src.model.store_cli", "--model-dir", str(root), "rollout", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def predict(server: Server, text: str, key: str) -> dict[str, object]:
    req = request(server.url("/predict"), body={"text": text}, timeout=10, headers={"X-Rollout-Key": key})
    assert req.status == 200, req.body
    answer: dict[str, object] = req.json()
    return answer


def rollout_state(server: Server) -> dict[str, object]:
    answer: dict[str, object] = request(server.url("/models/sentiment/rollout")).json()
    return answer


def until_both_workers_follow(server: Server, candidate: str, keys: int = 400) -> None:
    """Until both workers answer some canary clients with the candidate (each follows at its poll)."""

    def seen() -> bool:
        answered = {predict(server, TEXTS[0], f"probe-{i}")["model_version"] for i in range(keys // 10)}
        return candidate in answered

    wait_until(seen, 20, "the candidate answering canary clients")


def test_a_bad_canary_is_pulled_back_by_its_guard(server: Server, store: tuple[Path, list[str]]) -> None:
    root, (current, _, flipped) = store
    started = cli(root, "start", "sentiment", flipped, "--canary", "50")
    assert started.returncode == 0, started.stderr
    until_both_workers_follow(server, flipped)
    for i in range(400):  # every one answered 200, by CURRENT or, until the guard trips, the candidate
        predict(server, TEXTS[i % 4], f"client-{i}")
    wait_until(lambda: rollout_state(server)["state"] == "aborted", 20, "the guard aborting the rollout")
    state = rollout_state(server)
    assert str(state["reason"]).startswith("disagreement: candidate disagrees with CURRENT on")
    assert ModelRegistry(root).store().current_version() == current  # CURRENT never moved

    def only_current() -> bool:
        return all(predict(server, TEXTS[0], f"client-{i}")["model_version"] == current for i in range(100))

    wait_until(only_current, 10, "every worker to stop using the candidate")
    status = cli(root, "status", "sentiment")
    assert json.loads(status.stdout)["state"] == "aborted"


def test_canary_clients_are_sticky_and_versions_are_addressable(server: Server, store: tuple[Path, list[str]]) -> None:
    root, (current, candidate, _) = store
    assert cli(root, "start", "sentiment", candidate, "--canary", "50").returncode == 0
    until_both_workers_follow(server, candidate)
    first = {f"user-{i}": predict(server, TEXTS[1], f"user-{i}")["model_version"] for i in range(60)}
    assert set(first.values()) == {current, candidate}
    for _ in range(3):  # whichever worker answers, a client keeps its version
        assert {key: predict(server, TEXTS[1], key)["model_version"] for key in first} == first
    for version in (current, candidate):
        reply = request(server.url(f"/models/sentiment/versions/{version}/predict"), body={"text": TEXTS[0]})
        assert reply.json()["model_version"] == version
    wait_until(
        lambda: set(request(server.url("/v2/models/sentiment")).json()["versions"]) == {current, candidate},
        5,
        "the V2 metadata listing both loaded versions",
    )
    missing = request(server.url("/models/sentiment/versions/20200101T000000000Z-000000/predict"), body={"text": "x"})
    assert missing.status == 404
    again = cli(root, "start", "sentiment", candidate, "--shadow", "10")
    assert again.returncode == 2
    assert "has a running rollout" in again.stderr


def test_a_shadow_is_never_seen_by_clients_but_is_measured(server: Server, store: tuple[Path, list[str]]) -> None:
    root, (current, candidate, _) = store
    assert cli(root, "start", "sentiment", candidate, "--shadow", "100").returncode == 0

    def measured() -> bool:
        answers = [predict(server, TEXTS[i % 4], f"s-{i}") for i in range(50)]
        assert {a["model_version"] for a in answers} == {current}
        return int(str(rollout_state(server)["compared"])) >= 200

    wait_until(measured, 30, "the shadow scoring requests")
    state = rollout_state(server)
    assert state["state"] == "running"
    assert state["mode"] == "shadow"
    assert float(str(state["agreement"])) > 0.8
    assert state["candidate_errors"] == 0


def test_promote_under_load_fails_no_request(server: Server, store: tuple[Path, list[str]]) -> None:
    root, (current, candidate, _) = store
    assert cli(root, "start", "sentiment", candidate, "--canary", "20").returncode == 0
    until_both_workers_follow(server, candidate)
    failures: list[object] = []
    seen: list[str] = []
    stop = threading.Event()

    def load() -> None:
        i = 0
        while not stop.is_set():
            reply = request(server.url("/predict"), body={"text": TEXTS[i % 4]}, timeout=10)
            if reply.status != 200:
                failures.append((reply.status, reply.body[:200]))
            else:
                seen.append(str(reply.json()["model_version"]))
            i += 1

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    promoted = cli(root, "promote", "sentiment")
    assert promoted.returncode == 0, promoted.stderr
    wait_until(lambda: seen[-20:] and set(seen[-20:]) == {candidate}, 15, "every worker serving the candidate")
    stop.set()
    for thread in threads:
        thread.join(10)
    assert failures == []
    assert len(seen) > 100
    assert ModelRegistry(root).store().current_version() == candidate
    assert rollout_state(server)["state"] == "promoted"
    assert current in seen
