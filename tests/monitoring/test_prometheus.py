"""The service scraped by a real Prometheus, configured as in k8s; every rule and panel query runs."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from src.store import rollout as rollouts
from src.store.registry import ModelRegistry
from tests.e2e.servers import free_port, production_command, production_env, request, running_server, wait_until
from tests.monitoring.prometheus import (
    METRICS_TOKEN,
    alert_rules,
    dashboard_expressions,
    local_config,
    query,
    recording_rules,
    token_file,
    write_config,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus (make test installs it)"),
]

SENT = 40


def _has_data(base_url: str, expr: str) -> bool:
    answer = query(base_url, expr)
    return answer["status"] == "success" and bool(answer["data"]["result"])


def _with_shadow_rollout(model_dir: Path, root: Path) -> Path:
    """A copy of the store whose model has a shadow rollout running, so the rollout series exist too."""
    shutil.copytree(model_dir, root)
    store = ModelRegistry(root).store()
    current = store.load()
    candidate = store.publish(current.pipeline, current.metadata)
    store.activate(current.version)
    rollouts.start(store, candidate, "shadow", 100)
    return root


def test_prometheus_sees_exactly_what_was_sent(model_dir: Path, tmp_path: Path) -> None:
    service_port, prometheus_port = free_port(), free_port()
    store = _with_shadow_rollout(model_dir, tmp_path / "models")
    env = production_env(
        store,
        service_port,
        tmp_path,
        MODEL_POLL_SECONDS="0.3",
        PREDICTION_LOG_DIR=str(tmp_path / "logs"),
        METRICS_TOKEN=METRICS_TOKEN,
    )
    local = local_config(f"127.0.0.1:{service_port}", token_file(tmp_path))
    config = write_config(tmp_path / "prometheus.yml", local)
    checked = subprocess.run(["promtool", "check", "config", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    prometheus = [
        "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{prometheus_port}",
    ]
    started = time.monotonic()
    with (
        running_server(production_command(), service_port, env, tmp_path) as service,
        running_server(prometheus, prometheus_port, {}, tmp_path, ready_path="/-/ready") as server,
    ):
        wait_until(
            lambda: request(service.url("/models/sentiment/rollout")).json()["candidate_loaded_here"], 10, "the rollout"
        )
        time.sleep(1.0)  # every worker follows the rollout at its next poll
        for i in range(SENT):
            assert request(service.url("/predict"), body={"text": f"a fine film, number {i}"}).status == 200
        sent_at = time.monotonic()
        base = server.base_url
        expr = 'sum(mlservice_http_requests_total{route="/predict",status="200"})'
        wait_until(
            lambda: (r := query(base, expr)["data"]["result"]) and float(r[0]["value"][1]) == SENT,
            60,
            f"Prometheus to report {SENT} requests",
            interval=0.5,
        )
        seen_after = time.monotonic() - sent_at
        for name in recording_rules():
            wait_until(lambda name=name: _has_data(base, name), 30, f"recorded series {name}", interval=0.5)
        for name, alert in alert_rules().items():
            assert query(base, alert)["status"] == "success", name
        for panel in dashboard_expressions():
            wait_until(lambda panel=panel: _has_data(base, panel), 30, f"data for panel query {panel}", interval=0.5)
    took = time.monotonic() - started
    report = f"Prometheus saw all {SENT} requests {seen_after:.1f} s after the last; test took {took:.1f} s"
    print(f"\n{report}")  # noqa: T201 - the figure the monitoring issue asks for
