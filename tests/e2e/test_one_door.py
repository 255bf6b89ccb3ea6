"""Issue 36's findings, each reproduced against the production server (2 workers) as a user or an attacker would.

- model names leaked across tenants (probes, V1/V2 model readiness, gRPC ModelReady, the rollout
  route, /metrics);
- a nested ROLLOUT answered 500 and stopped hot reload for every other model;
- a lazily served model whose file fails its check was read and hashed again for every request;
- a nested key file ended the server with a traceback.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from tritonclient.grpc import service_pb2, service_pb2_grpc

from src.store.registry import ModelRegistry
from src.store.store import MODEL_FILE
from tests.conftest import SECOND_MODEL
from tests.e2e.servers import (
    Server,
    free_port,
    metric_value,
    production_command,
    production_env,
    request,
    running_server,
    wait_until,
)
from tests.tenants.test_keys import sha, write_keys

pytestmark = pytest.mark.e2e

METRICS_TOKEN = "scrape-token-of-this-test-0123456789"
NARROW = {"X-API-Key": "narrow-key"}
KEYS = f"""  - id: narrow
    sha256: {sha("narrow-key")}
    models: [sentiment]
    scopes: [predict, read]
"""


@pytest.fixture(scope="module")
def keyed(two_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    tmp_path = tmp_path_factory.mktemp("one-door")
    port = free_port()
    env = production_env(
        two_models_dir,
        port,
        tmp_path,
        API_KEYS_FILE=str(write_keys(tmp_path / "keys.yaml", KEYS)),
        METRICS_TOKEN=METRICS_TOKEN,
    )
    with running_server(production_command(), port, env, tmp_path, ready_path="/health/ready") as server:
        yield server, f"127.0.0.1:{env['GRPC_PORT']}"


def _names_a_model(text: str, *names: str) -> list[str]:
    return [name for name in names if re.search(rf"\b{re.escape(name)}\b", text)]


def test_no_answer_names_a_model_the_caller_may_not_see(keyed: tuple[Server, str]) -> None:
    server, _ = keyed
    # Without a key: the probes say only live or ready; model routes ask for a key and name nothing.
    for path in ("/health", "/health/ready", "/v2/health/ready"):
        for headers in ({}, {"X-API-Key": "wrong"}, NARROW):
            answer = request(server.url(path), headers=headers)
            assert answer.status == 200, path
            assert not _names_a_model(answer.body.decode(), "sentiment", SECOND_MODEL), (path, answer.body)
            assert b"version" not in answer.body, path
    for path in ("/v2/models/nope/ready", "/v1/models/nope", "/v2/models/sentiment/ready", "/models/nope/rollout"):
        answer = request(server.url(path))
        assert answer.status == 401, path
        assert not _names_a_model(answer.body.decode(), "sentiment", SECOND_MODEL), (path, answer.body)
    # A key limited to `sentiment`: every model it may not use answers as a name nothing serves.
    nowhere = "no model named 'nope' is served here (models: sentiment)"
    for path in ("/models/nope/rollout", "/v2/models/nope/ready", "/v1/models/nope", "/models/nope"):
        answer = request(server.url(path), headers=NARROW)
        assert answer.status == 404, path
        assert nowhere in answer.body.decode(), (path, answer.body)
    hidden = f"no model named '{SECOND_MODEL}' is served here (models: sentiment)"
    for path in (f"/models/{SECOND_MODEL}/rollout", f"/v2/models/{SECOND_MODEL}/ready", f"/v1/models/{SECOND_MODEL}"):
        answer = request(server.url(path), headers=NARROW)
        assert answer.status == 404, path
        assert hidden in answer.body.decode(), (path, answer.body)


def test_grpc_model_ready_needs_a_key_and_hides_other_models(keyed: tuple[Server, str]) -> None:
    _, target = keyed
    with grpc.insecure_channel(target) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        for name, version in [("nope", ""), ("sentiment", "no-such-version"), (SECOND_MODEL, "")]:
            with pytest.raises(grpc.RpcError) as anonymous:
                stub.ModelReady(service_pb2.ModelReadyRequest(name=name, version=version), timeout=10)
            assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert not _names_a_model(str(anonymous.value.details()), "sentiment", SECOND_MODEL)
        with pytest.raises(grpc.RpcError) as hidden:
            stub.ModelReady(
                service_pb2.ModelReadyRequest(name=SECOND_MODEL), metadata=(("x-api-key", "narrow-key"),), timeout=10
            )
        assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
        assert hidden.value.details() == f"no model named '{SECOND_MODEL}' is served here (models: sentiment)"
        mine = stub.ModelReady(
            service_pb2.ModelReadyRequest(name="sentiment"), metadata=(("x-api-key", "narrow-key"),), timeout=10
        )
        assert mine.ready


def test_metrics_go_to_the_bearer_of_the_token_only(keyed: tuple[Server, str]) -> None:
    server, _ = keyed
    for headers in ({}, NARROW, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {METRICS_TOKEN}"}):
        answer = request(server.url("/metrics"), headers=headers)
        assert answer.status == 401, headers
        assert b"mlservice_" not in answer.body
    scraped = request(server.url("/metrics"), headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert scraped.status == 200
    assert b'mlservice_model_ready{model="sentiment"}' in scraped.body


def test_a_nested_rollout_neither_fails_its_route_nor_stops_other_models_reloading(
    two_models_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "models"
    shutil.copytree(two_models_dir, root)
    (root / "sentiment" / "ROLLOUT").write_text("[" * 5_000 + "]" * 5_000)  # 10 KB, under the 16 KiB cap
    port = free_port()
    env = production_env(root, port, tmp_path, MODEL_POLL_SECONDS="0.3")
    with running_server(production_command(), port, env, tmp_path, ready_path="/health/ready") as server:
        rollout = request(server.url("/models/sentiment/rollout"))
        assert rollout.status == 200, rollout.body
        assert rollout.json()["state"] == "unreadable"
        assert "nested over" in rollout.json()["reason"]
        store = ModelRegistry(root).store(SECOND_MODEL)
        current = store.current_version()
        assert current is not None
        newer = store.publish(store.load(current).pipeline, {})

        def both_workers_serve_it() -> bool:
            versions = [request(server.url("/health")).json()["models"][SECOND_MODEL]["version"] for _ in range(12)]
            return all(version == newer for version in versions)

        wait_until(both_workers_serve_it, 30, f"{SECOND_MODEL} version {newer} in every worker")
        assert request(server.url("/predict"), body={"text": "fine"}).status == 200
        assert "Traceback" not in server.log()


def _tree_cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and its live children (the server's workers), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def test_a_lazily_served_model_that_fails_its_check_is_not_read_again_for_each_request(
    two_models_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "models"
    shutil.copytree(two_models_dir, root)
    version = (root / SECOND_MODEL / "CURRENT").read_text().strip()
    model_file = root / SECOND_MODEL / version / MODEL_FILE
    good = model_file.read_bytes()
    model_file.write_bytes(os.urandom(45 * 1024 * 1024))  # 45 MB that do not match the recorded sha256
    port = free_port()
    env = production_env(root, port, tmp_path, MODEL_LOAD="lazy", MAX_MODEL_BYTES=str(64 * 1024 * 1024))
    with running_server(production_command(), port, env, tmp_path, ready_path="/health/ready") as server:
        before = _tree_cpu_seconds(server.process.pid)
        answers = [request(server.url(f"/models/{SECOND_MODEL}/predict"), body={"text": "fine"}) for _ in range(30)]
        spent = _tree_cpu_seconds(server.process.pid) - before
        assert {answer.status for answer in answers} == {503}
        assert all(int(answer.headers["retry-after"]) >= 1 for answer in answers)
        assert "sha256" in answers[-1].json()["detail"]
        failures = f'mlservice_model_loads_total{{kind="first_request",model="{SECOND_MODEL}",outcome="failure"}}'
        loads = metric_value(request(server.url("/metrics")).body.decode(), failures)
        assert 1 <= loads <= 2, loads  # once per worker, not once per request
        errors = [line for line in server.log().splitlines() if f"model {SECOND_MODEL} not ready" in line]
        assert 1 <= len(errors) <= 2, errors
        print(f"30 requests to a model failing its check: {spent:.2f} s of server CPU, {loads:g} loads")  # noqa: T201
        model_file.write_bytes(good)  # the file changes: the next request tries at once
        assert request(server.url(f"/models/{SECOND_MODEL}/predict"), body={"text": "fine"}).status == 200


def test_a_nested_key_file_stops_the_server_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "keys.yaml"
    bad.write_text("keys: " + "[" * 3_000 + "]" * 3_000 + "\n")
    env = {**os.environ, **production_env(tmp_path / "models", free_port(), tmp_path, API_KEYS_FILE=str(bad))}
    done = subprocess.run(production_command(), env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = [line for line in done.stderr.splitlines() if "API_KEYS_FILE" in line]
    assert f"{bad} is nested over 64 levels deep" in line


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        ("METRICS_TOKEN", "short", "METRICS_TOKEN: METRICS_TOKEN must be at least 16 characters"),
        ("MAX_MODELS", "many", "MAX_MODELS: Input should be a valid integer"),
        ("SHARED_STATE_URL", "http://cache:6379", "SHARED_STATE_URL: the scheme must be redis:// or rediss://"),
        ("SHARED_STATE_URL", "redis://cache:port/0", "SHARED_STATE_URL: the port must be a number"),
        ("SHARED_STATE_PASSWORD_FILE", "/nonexistent/password", "is not a readable file"),
    ],
)
def test_a_bad_setting_stops_the_server_in_one_line(tmp_path: Path, setting: str, value: str, named: str) -> None:
    env = {**os.environ, **production_env(tmp_path / "models", free_port(), tmp_path, **{setting: value})}
    done = subprocess.run(production_command(), env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = [line for line in done.stderr.splitlines() if named in line]
    assert "refusing to start" in line
