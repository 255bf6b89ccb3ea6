"""300 small models under one memory budget, served by the production server (2 workers, MODEL_LOAD=lazy):
ready in seconds, every request answered with its model's own labels (as scikit-learn gives them), the
least recently used models unloaded to stay within the budget, loads and evictions in the metrics and
the repository index, and each worker's memory within the budget plus what a one-model worker holds."""

from __future__ import annotations

import concurrent.futures
import random
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.many_models import build, model_name
from src.serving.predictor import Predictor
from src.store.registry import ModelRegistry
from tests.e2e.servers import (
    Server,
    child_pids,
    free_port,
    production_command,
    production_env,
    request,
    running_server,
)

pytestmark = pytest.mark.e2e
MODELS = 300
HELD = 40  # models the budget holds per worker
REQUESTS = 3000
MARGIN = 60 << 20  # what the allocator keeps after unloads, and request buffers, per worker
TEXT = "alpha beta great"


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, Any], int, float]]:
    tmp_path = tmp_path_factory.mktemp("many-models")
    store = tmp_path / "models"
    fitted = build(store, MODELS)
    one = Predictor(ModelRegistry(store).resolve(model_name(1)).load()).memory_bytes
    budget = one * HELD
    port = free_port()
    env = production_env(store, port, tmp_path, MODEL_LOAD="lazy", MODEL_MEMORY_BUDGET=str(budget), MAX_MODELS="1000")
    started = time.monotonic()
    with running_server(production_command(), port, env, tmp_path, ready_path="/health/ready") as server:
        yield server, fitted, budget, time.monotonic() - started


def test_300_models_under_a_budget_answer_with_their_own_labels(
    served: tuple[Server, dict[str, Any], int, float],
) -> None:
    server, fitted, budget, ready_after = served
    assert ready_after < 20, ready_after  # only the default model loads at start
    workers = child_pids(server.process.pid)
    assert len(workers) == 2
    one_model_rss = max(_rss(pid) for pid in workers)  # each worker holds the default model alone now
    names = sorted(fitted)
    rng = random.Random(2026)
    order = [rng.choice(names) for _ in range(REQUESTS)]
    expected = {name: str(pipeline.predict([TEXT])[0]) for name, pipeline in fitted.items()}
    first_seen: set[str] = set()
    first_latencies: list[float] = []

    def ask(name: str) -> tuple[str, int, str, float]:
        started = time.perf_counter()
        answer = request(server.url(f"/models/{name}/predict"), body={"text": TEXT}, timeout=30)
        label = answer.json().get("label", "") if answer.status == 200 else answer.body.decode()[:200]
        return name, answer.status, label, time.perf_counter() - started

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for name, status, label, seconds in pool.map(ask, order):
            assert status == 200, (name, label)
            assert label == expected[name], name
            if name not in first_seen:
                first_seen.add(name)
                first_latencies.append(seconds)
    first_latencies.sort()
    p99 = first_latencies[int(len(first_latencies) * 0.99) - 1]
    # A first request loads the model (about 10 ms for these) behind whatever its worker is doing.
    assert p99 < 2.0, (statistics.median(first_latencies), p99)
    metrics = request(server.url("/metrics")).body.decode()
    lines = metrics.splitlines()

    def total(prefix: str, *parts: str) -> float:
        found = [line for line in lines if line.startswith(prefix) and all(part in line for part in parts)]
        return sum(float(line.rsplit(" ", 1)[1]) for line in found)

    assert total("mlservice_model_evictions_total{") > 0
    per_worker = [float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("mlservice_model_bytes_loaded{")]
    assert len(per_worker) == 2
    for held in per_worker:  # what each worker's loaded models hold, as measured at load
        assert 0 < held <= budget, (held, budget)
    counts = [float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("mlservice_models_loaded{")]
    assert all(HELD / 2 <= count <= HELD + 1 for count in counts), counts
    assert total("mlservice_model_loads_total{", 'kind="first_request"', 'outcome="success"') >= MODELS - 1
    for pid in workers:
        assert _rss(pid) <= budget + one_model_rss + MARGIN, (pid, _rss(pid), budget, one_model_rss)
    index = request(server.url("/v2/repository/index"), method="POST").json()
    states = {entry["state"] for entry in index}
    assert len(index) == MODELS
    assert {"READY", "UNAVAILABLE"} <= states
    assert any("least recently used" in entry["reason"] for entry in index)
