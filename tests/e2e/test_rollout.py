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


MIN_REQUESTS = 40


@pytest.fixture(scope="module")
def versions(sample: Dataset) -> tuple[ModelTrainer, ModelTrainer, ModelTrainer]:
    """CURRENT, a sound candidate (the same data, a little less regularised), and one trained on swapped labels."""
    part = sample.sample(4000, random_state=1)
    flipped = ["positive" if label == "negative" else "negative" for label in part.labels]
    return (
        ModelTrainer().train(part.texts, part.labels),
        ModelTrainer(C=4.0).train(part.texts, part.labels),
        ModelTrainer().train(part.texts, flipped),
    )


@pytest.fixture(scope="module")
def live_texts(bundled: Dataset) -> list[str]:
    """What clients send: real texts of every source, none of them trained on here."""
    return bundled.sample(600, random_state=77).texts


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
    env = production_env(root, port, tmp_path, MODEL_POLL_SECONDS="0.3", ROLLOUT_MIN_REQUESTS=str(MIN_REQUESTS))
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


def until_both_workers_follow(server: Server, candidate: str, keys: int = 40) -> None:
    """Until both workers route canary clients to the candidate (each follows at its own poll, after loading it).

    One answer from the candidate proves only that one worker follows. Each round sends every key on a new
    connection, so the kernel spreads them over both workers; while one worker still serves CURRENT alone,
    the candidate's keys get different versions from round to round. Three equal rounds that include the
    candidate mean both workers route alike.
    """

    def routed_alike() -> bool:
        rounds = [
            {f"probe-{i}": predict(server, TEXTS[0], f"probe-{i}")["model_version"] for i in range(keys)}
            for _ in range(3)
        ]
        return candidate in rounds[0].values() and all(other == rounds[0] for other in rounds[1:])

    wait_until(routed_alike, 30, "both workers routing canary clients to the candidate")


def steady_load(
    server: Server, texts: list[str], clients: int = 4
) -> tuple[threading.Event, list[threading.Thread], list[object], list[str]]:
    """Clients sending predictions without pause, each request from a new client key; what each got."""
    stop = threading.Event()
    failures: list[object] = []
    versions: list[str] = []

    def client(number: int) -> None:
        i = 0
        while not stop.is_set():
            reply = request(
                server.url("/predict"),
                body={"text": texts[i % len(texts)]},
                timeout=10,
                headers={"X-Rollout-Key": f"client-{number}-{i}"},
            )
            if reply.status != 200:
                failures.append((reply.status, reply.body[:200]))
            else:
                versions.append(str(reply.json()["model_version"]))
            i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    return stop, threads, failures, versions


def test_a_canary_with_swapped_labels_is_pulled_back_by_its_guard(
    server: Server, store: tuple[Path, list[str]], live_texts: list[str]
) -> None:
    root, (current, _, swapped) = store
    stop, threads, failures, versions = steady_load(server, live_texts)
    time.sleep(0.5)
    started = cli(root, "start", "sentiment", swapped, "--canary", "10")
    assert started.returncode == 0, started.stderr
    wait_until(lambda: rollout_state(server)["state"] == "aborted", 60, "the guard aborting the rollout")
    # Twenty answers on new connections, none from a worker still routing the rollout: both have dropped it.
    wait_until(
        lambda: not any(rollout_state(server)["candidate_loaded_here"] for _ in range(20)),
        30,
        "both workers dropping the aborted rollout",
    )
    time.sleep(0.2)  # requests routed just before the drop finish
    answered_before = versions.count(swapped)
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(10)
    state = rollout_state(server)
    assert str(state["reason"]).startswith("disagreement: candidate disagrees with CURRENT on")
    assert ModelRegistry(root).store().current_version() == current  # CURRENT never moved
    assert failures == []  # no request failed
    answered = versions.count(swapped)
    assert answered == answered_before  # none after the abort reached every worker
    # Each of the 2 workers judges on its own sample: at most the guard's minimum each, plus what was in flight.
    assert 0 < answered <= 2 * MIN_REQUESTS + 8, answered
    print(  # noqa: T201 - the figure the rollout issue asks for
        f"\ncanary 10% with swapped labels: {answered} of {len(versions)} requests answered by it; {state['reason']}"
    )
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


def test_a_shadow_is_never_seen_by_clients_but_is_measured(
    server: Server,
    store: tuple[Path, list[str]],
    versions: tuple[ModelTrainer, ModelTrainer, ModelTrainer],
    live_texts: list[str],
) -> None:
    root, (current, candidate, _) = store
    assert cli(root, "start", "sentiment", candidate, "--shadow", "100").returncode == 0
    # Twenty answers on new connections, all from a worker that routes the rollout: both workers do.
    wait_until(
        lambda: all(rollout_state(server)["candidate_loaded_here"] for _ in range(20)), 30, "both workers' rollout"
    )
    expected = versions[0].pipeline_.predict_proba(live_texts)
    classes = list(versions[0].pipeline_.classes_)
    for text, probabilities in zip(live_texts, expected, strict=True):
        answer = predict(server, text, "shadowed")
        assert answer["model_version"] == current
        assert answer["probabilities"] == pytest.approx(dict(zip(classes, probabilities, strict=True)), abs=1e-9)
    wait_until(lambda: int(str(rollout_state(server)["compared"])) >= len(live_texts), 10, "every text compared")
    state = rollout_state(server)
    assert state["state"] == "running"
    assert state["mode"] == "shadow"
    assert float(str(state["agreement"])) >= 0.95
    assert state["candidate_errors"] == 0
    print(  # noqa: T201 - the figure the rollout issue asks for
        f"\nshadow 100%: agreement {state['agreement']:.3f} over {state['compared']} texts, "
        f"latency ratio {state['latency_ratio']}"
    )


def test_promote_under_load_fails_no_request(server: Server, store: tuple[Path, list[str]]) -> None:
    root, (current, candidate, _) = store
    assert cli(root, "start", "sentiment", candidate, "--canary", "20").returncode == 0
    until_both_workers_follow(server, candidate)
    failures: list[object] = []
    seen: list[str] = []
    stop = threading.Event()

    def load(number: int) -> None:
        i = 0
        while not stop.is_set():
            key = {"X-Rollout-Key": f"load-{number}-{i}"}  # new clients: both versions answer some
            reply = request(server.url("/predict"), body={"text": TEXTS[i % 4]}, timeout=10, headers=key)
            if reply.status != 200:
                failures.append((reply.status, reply.body[:200]))
            else:
                seen.append(str(reply.json()["model_version"]))
            i += 1

    threads = [threading.Thread(target=load, args=(n,)) for n in range(4)]
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
