"""The production command: several workers, metrics summed across them, a killed worker replaced."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.servers import (
    ROOT,
    child_pids,
    free_port,
    metric_value,
    production_command,
    production_env,
    request,
    running_server,
    uvicorn_command,
    wait_until,
)

pytestmark = pytest.mark.e2e

PREDICT_200 = 'mlservice_http_requests_total{method="POST",route="/predict",status="200"}'


def test_two_workers_count_every_request_whichever_answers(model_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    with running_server(production_command(), port, production_env(model_dir, port, tmp_path), tmp_path) as server:
        assert len(child_pids(server.process.pid)) >= 2
        sent = 150
        for i in range(sent):
            assert request(server.url("/predict"), body={"text": f"review number {i}: great"}).status == 200
        for _ in range(10):  # each scrape lands on either worker; all must report the total
            assert metric_value(request(server.url("/metrics")).body.decode(), PREDICT_200) == sent
        exposition = request(server.url("/metrics")).body.decode()
        predicted = sum(
            metric_value(exposition, f'mlservice_predictions_total{{label="{label}",model="sentiment"}}')
            for label in ("negative", "positive")
        )
        assert predicted == sent
        assert metric_value(exposition, 'mlservice_model_ready{model="sentiment"}') == 1
        linted = subprocess.run(
            [shutil.which("promtool") or "promtool", "check", "metrics"],
            input=exposition,
            capture_output=True,
            text=True,
        )
        assert linted.returncode == 0, linted.stdout + linted.stderr
        assert linted.stdout + linted.stderr == "", linted.stdout + linted.stderr  # not even a lint warning
        # From a loopback peer, which uvicorn trusts by default, X-Forwarded-* would have rewritten the
        # scheme (a redirect to https) and the client's address: the app uses neither, so neither is taken.
        # And no answer names the server's software.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
        connection.request("GET", "/models/", headers=forwarded)
        redirect = connection.getresponse()
        redirect.read()
        connection.close()
        assert redirect.status == 307
        assert redirect.getheader("location") == f"http://127.0.0.1:{port}/models"
        assert redirect.getheader("server") is None
        assert "server" not in request(server.url("/predict"), body={"text": "fine"}).headers


def test_a_killed_worker_is_replaced_and_service_continues(model_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    with running_server(production_command(), port, production_env(model_dir, port, tmp_path), tmp_path) as server:
        workers = wait_until(lambda: (c := child_pids(server.process.pid)) and len(c) >= 2 and c, 20, "2 workers")
        victim = sorted(workers)[0]
        os.kill(victim, signal.SIGKILL)
        replaced = wait_until(
            lambda: (c := child_pids(server.process.pid)) and victim not in c and len(c) >= 2 and c, 30, "a new worker"
        )
        assert replaced - workers
        wait_until(lambda: request(server.url("/health/ready")).status == 200, 30, "ready again")
        statuses = [request(server.url("/predict"), body={"text": "still here"}).status for _ in range(100)]
        assert statuses == [200] * 100
        assert f"worker {victim} exited" in server.log()


def test_workers_stop_when_the_supervisor_is_killed(model_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    with running_server(production_command(), port, production_env(model_dir, port, tmp_path), tmp_path) as server:
        workers = wait_until(lambda: (c := child_pids(server.process.pid)) and len(c) >= 2 and c, 20, "2 workers")
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(5)

        def gone() -> bool:
            return not any(Path(f"/proc/{pid}").exists() for pid in workers)

        wait_until(gone, 15, "orphaned workers to stop")
        with pytest.raises(urllib.error.URLError, match="Connection refused"):
            request(f"http://127.0.0.1:{port}/health/live", timeout=2)


def test_a_second_server_on_the_same_port_refuses_to_start(model_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    env = production_env(model_dir, port, tmp_path)
    with running_server(production_command(), port, env, tmp_path):
        second = subprocess.run(
            production_command(),
            env={**os.environ, **env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "second")},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert second.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port} (HTTP, PORT)" in second.stderr


def test_a_busy_grpc_port_is_the_one_named(model_dir: Path, tmp_path: Path) -> None:
    """Finding 18 of #27: with the gRPC port taken, the server said the free HTTP port was in use."""
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        grpc_port = taken.getsockname()[1]
        env = production_env(model_dir, port, tmp_path, GRPC_PORT=str(grpc_port))
        result = subprocess.run(
            production_command(),
            env={**os.environ, **env},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{grpc_port} (gRPC, GRPC_PORT): Address already in use" in result.stderr
    assert f":{port}" not in result.stderr


def test_a_hung_worker_is_killed_and_replaced(model_dir: Path, tmp_path: Path) -> None:
    """The reproduction: a SIGSTOPped worker was never noticed, and 1 probe in 10 hung past 2 s."""
    port = free_port()
    env = production_env(model_dir, port, tmp_path, WORKER_TIMEOUT_SECONDS="2")
    with running_server(production_command(), port, env, tmp_path) as server:
        workers = wait_until(lambda: (c := child_pids(server.process.pid)) and len(c) >= 2 and c, 20, "2 workers")
        # Both workers serving (new connections land on either), then past their first heartbeat: a worker
        # stopped while still loading its model is in its start-up grace period, not hung.
        wait_until(lambda: all(request(server.url("/health/ready")).status == 200 for _ in range(12)), 30, "ready")
        time.sleep(1.5)
        victim = min(workers)
        os.kill(victim, signal.SIGSTOP)
        started = time.monotonic()
        replaced = wait_until(
            lambda: (c := child_pids(server.process.pid)) and victim not in c and len(c) >= 2 and c, 20, "a new worker"
        )
        assert time.monotonic() - started < 10
        assert replaced - workers
        wait_until(lambda: request(server.url("/health/ready")).status == 200, 30, "ready again")
        slow = [
            elapsed
            for _ in range(40)
            if (elapsed := _timed(lambda: request(server.url("/health/ready"), timeout=5).status)) > 2
        ]
        assert slow == []
        assert f"worker {victim} has not answered" in server.log()
        exposition = request(server.url("/metrics")).body.decode()
        assert metric_value(exposition, 'mlservice_worker_restarts_total{reason="hung"}') == 1


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def test_the_metrics_and_control_folders_made_at_start_are_removed_at_exit(model_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    env = production_env(model_dir, port, tmp_path)
    del env["PROMETHEUS_MULTIPROC_DIR"]
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env["TMPDIR"] = str(scratch)
    with running_server(production_command(), port, env, tmp_path) as server:
        made = sorted(p.name.rsplit("-", 1)[0] for p in scratch.iterdir())
        assert made == ["ml-service-control", "ml-service-metrics"]
        assert request(server.url("/predict"), body={"text": "fine"}).status == 200
    assert list(scratch.iterdir()) == []


def test_uvicorn_workers_without_a_metrics_folder_warn_loudly(model_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {"MODEL_DIR": str(model_dir), "MODEL_POLL_SECONDS": "0"}
    with running_server(uvicorn_command(port, "--workers", "2"), port, env, tmp_path) as server:
        wait_until(lambda: server.log().count("PROMETHEUS_MULTIPROC_DIR") >= 2, 20, "a warning from each worker")
    assert "counts only this worker's requests" in server.log()
