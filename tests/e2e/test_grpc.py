"""The Open Inference Protocol over gRPC, end to end: tritonclient.grpc (unchanged) against the
production server (2 workers), answers equal to REST V2 bit for bit, protocol errors, health,
keys, deadlines, and SIGTERM under gRPC load."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from src.api.grpc.protocol import open_inference_pb2 as oip
from src.model.datasets import Dataset
from src.store.registry import ModelRegistry
from tests.conftest import SECOND_MODEL
from tests.e2e.servers import (
    Server,
    child_pids,
    free_port,
    metric_value,
    production_command,
    production_env,
    request,
    running_server,
    wait_until,
)

pytestmark = pytest.mark.e2e

TEXTS = ["A wonderful, moving film.", "Dull, and far too long.", "café ünïcode 🎬", "not bad at all"]


@pytest.fixture(scope="module")
def served(two_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    tmp_path = tmp_path_factory.mktemp("grpc")
    port = free_port()
    env = production_env(two_models_dir, port, tmp_path, MAX_BATCH_SIZE="64", GRPC_MAX_MESSAGE_BYTES="100000")
    with running_server(production_command(), port, env, tmp_path, ready_path="/health/ready") as server:
        yield server, f"127.0.0.1:{env['GRPC_PORT']}"


def _inputs(texts: list[str], module: object = triton_grpc) -> list[object]:
    tensor = module.InferInput("text", [len(texts)], "BYTES")  # type: ignore[attr-defined]
    tensor.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object))
    return [tensor]


def _stub(target: str) -> service_pb2_grpc.GRPCInferenceServiceStub:
    return service_pb2_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(target))


def test_metadata_and_readiness(served: tuple[Server, str]) -> None:
    server, target = served
    client = triton_grpc.InferenceServerClient(target)
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("sentiment")
    assert client.is_model_ready(SECOND_MODEL)
    metadata = client.get_server_metadata()
    rest = request(server.url("/v2")).json()
    assert (metadata.name, metadata.version, list(metadata.extensions)) == (
        rest["name"],
        rest["version"],
        rest["extensions"],
    )
    for name in ("sentiment", SECOND_MODEL):
        model = client.get_model_metadata(name)
        rest_model = request(server.url(f"/v2/models/{name}")).json()
        assert model.name == name
        assert list(model.versions) == rest_model["versions"]
        assert model.platform == rest_model["platform"]
        assert [(o.name, o.datatype, list(o.shape)) for o in model.outputs] == [
            (o["name"], o["datatype"], o["shape"]) for o in rest_model["outputs"]
        ]
        # The protocol's `properties` (tritonclient's messages lack the field): REST's parameters, lists as JSON.
        with grpc.insecure_channel(target) as channel:
            properties = channel.unary_unary(
                "/inference.GRPCInferenceService/ModelMetadata",
                request_serializer=oip.ModelMetadataRequest.SerializeToString,
                response_deserializer=oip.ModelMetadataResponse.FromString,
            )(oip.ModelMetadataRequest(name=name), timeout=10).properties
        assert {key: json.loads(value) if key != "engine" else value for key, value in properties.items()} == (
            rest_model["parameters"]
        )
    with pytest.raises(InferenceServerException, match="NOT_FOUND"):
        client.is_model_ready("nope")


@pytest.mark.parametrize("name", ["sentiment", SECOND_MODEL])
def test_inference_equals_rest_bit_for_bit(served: tuple[Server, str], name: str) -> None:
    server, target = served
    answer = triton_grpc.InferenceServerClient(target).infer(name, _inputs(TEXTS))
    over_rest = triton_http.InferenceServerClient(server.base_url.removeprefix("http://")).infer(
        name, _inputs(TEXTS, triton_http)
    )
    assert answer.as_numpy("label").tolist() == over_rest.as_numpy("label").tolist()
    probabilities = answer.as_numpy("probabilities")
    assert probabilities.dtype == np.float32
    assert probabilities.tobytes() == over_rest.as_numpy("probabilities").tobytes()
    assert answer.get_response().model_name == name
    batch = request(server.url(f"/models/{name}/predict/batch"), body={"texts": TEXTS}).json()["predictions"]
    assert [p["label"] for p in batch] == [label.decode() for label in answer.as_numpy("label")]
    assert np.array([list(p["probabilities"].values()) for p in batch], dtype=np.float32).tobytes() == (
        probabilities.tobytes()
    )


def test_bytes_contents_answer_as_raw_inputs_do(served: tuple[Server, str]) -> None:
    _, target = served
    raw = triton_grpc.InferenceServerClient(target).infer("sentiment", _inputs(TEXTS)).get_response()
    message = service_pb2.ModelInferRequest(model_name="sentiment", id="by-contents")
    tensor = message.inputs.add(name="text", datatype="BYTES", shape=[len(TEXTS), 1])
    tensor.contents.bytes_contents.extend(t.encode() for t in TEXTS)
    answer = _stub(target).ModelInfer(message)
    assert answer.id == "by-contents"
    assert list(answer.raw_output_contents) == list(raw.raw_output_contents)


def _code(target: str, message: service_pb2.ModelInferRequest, **call: object) -> tuple[grpc.StatusCode, str]:
    try:
        _stub(target).ModelInfer(message, **call)
    except grpc.RpcError as error:
        return error.code(), error.details()
    return grpc.StatusCode.OK, ""


def _message(
    texts: list[str], *, datatype: str = "BYTES", name: str = "text", shape: list[int] | None = None
) -> service_pb2.ModelInferRequest:
    message = service_pb2.ModelInferRequest(model_name="sentiment")
    tensor = message.inputs.add(name=name, datatype=datatype, shape=shape or [len(texts)])
    tensor.contents.bytes_contents.extend(t.encode() for t in texts)
    return message


def test_bad_requests_get_protocol_errors_naming_the_problem(served: tuple[Server, str]) -> None:
    _, target = served
    cases = {
        "blank": (_message(["   "]), grpc.StatusCode.INVALID_ARGUMENT, "non-whitespace character (at inputs.0"),
        "datatype": (_message(["fine"], datatype="FP32"), grpc.StatusCode.INVALID_ARGUMENT, "datatype BYTES"),
        "input name": (_message(["fine"], name="txt"), grpc.StatusCode.INVALID_ARGUMENT, "exactly one input, 'text'"),
        "shape": (_message(["a", "b"], shape=[3]), grpc.StatusCode.INVALID_ARGUMENT, "3 elements"),
        "batch": (_message(["fine"] * 65), grpc.StatusCode.INVALID_ARGUMENT, "limit is 64 (MAX_BATCH_SIZE)"),
        "too large": (_message(["x" * 150_000]), grpc.StatusCode.RESOURCE_EXHAUSTED, ""),
    }
    for case, (message, code, words) in cases.items():
        got, details = _code(target, message)
        assert got == code, (case, got, details)
        assert words in details, (case, details)
    unknown = _message(["fine"])
    unknown.model_name = "nope"
    assert _code(target, unknown)[0] == grpc.StatusCode.NOT_FOUND
    wrong_output = _message(["fine"])
    wrong_output.outputs.add(name="scores")
    assert _code(target, wrong_output) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "model sentiment has no output 'scores'; its outputs are label, probabilities",
    )
    not_utf8 = _message([])
    not_utf8.inputs[0].shape[:] = [1]
    not_utf8.inputs[0].contents.bytes_contents.append(b"\xff\xfe")
    assert _code(target, not_utf8) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "input 'text' holds bytes that are not UTF-8 text",
    )


def test_health_and_metrics(served: tuple[Server, str]) -> None:
    server, target = served
    health = health_pb2_grpc.HealthStub(grpc.insecure_channel(target))
    for service in ("", "inference.GRPCInferenceService"):
        assert (
            health.Check(health_pb2.HealthCheckRequest(service=service)).status
            == health_pb2.HealthCheckResponse.SERVING
        )
    triton_grpc.InferenceServerClient(target).infer("sentiment", _inputs(TEXTS))
    exposition = request(server.url("/metrics")).body.decode()
    assert metric_value(exposition, 'mlservice_grpc_requests_total{code="OK",method="ModelInfer"}') >= 1
    assert metric_value(exposition, 'mlservice_inference_requests_total{outcome="ok",protocol="grpc"}') >= 1


def test_keys_and_deadlines(two_models_dir: Path, tmp_path: Path, sample: Dataset) -> None:
    port = free_port()
    env = production_env(two_models_dir, port, tmp_path, WORKERS="1", API_KEYS="k1", MAX_BATCH_SIZE="256")
    target = f"127.0.0.1:{env['GRPC_PORT']}"
    with running_server(production_command(), port, env, tmp_path):
        message = _message(["fine"])
        assert _code(target, message)[0] == grpc.StatusCode.UNAUTHENTICATED
        assert _code(target, message, metadata=[("x-api-key", "k2")])[0] == grpc.StatusCode.PERMISSION_DENIED
        assert _code(target, message, metadata=[("x-api-key", "k1")])[0] == grpc.StatusCode.OK
        client = triton_grpc.InferenceServerClient(target)
        assert client.is_server_live()  # health answers need no key
        long_reviews = [t for t in sample.texts if len(t) > 3000][:256]
        slow = _message(long_reviews)
        code, _ = _code(target, slow, metadata=[("x-api-key", "k1")], timeout=0.001)
        assert code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_sigterm_under_grpc_load_loses_no_accepted_call(two_models_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    env = production_env(two_models_dir, port, tmp_path, GRACEFUL_TIMEOUT_SECONDS="10")
    target = f"127.0.0.1:{env['GRPC_PORT']}"
    outcomes: Counter[str] = Counter()
    stop = threading.Event()

    def load() -> None:
        stub = _stub(target)
        while not stop.is_set():
            try:
                stub.ModelInfer(_message(TEXTS * 8), timeout=10)
                outcomes["ok"] += 1
            except grpc.RpcError as error:
                outcomes[error.code().name] += 1
                time.sleep(0.01)

    with running_server(production_command(), port, env, tmp_path) as server:
        threads = [threading.Thread(target=load) for _ in range(8)]
        for thread in threads:
            thread.start()
        time.sleep(2)
        before = outcomes["ok"]
        server.process.send_signal(signal.SIGTERM)
        status = server.process.wait(30)
        stop.set()
        for thread in threads:
            thread.join(15)
    assert status == 0
    assert before > 0
    # What the workers answered, from their metric files (they outlive the processes).
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=env["PROMETHEUS_MULTIPROC_DIR"])  # type: ignore[no-untyped-call]
    answered: Counter[str] = Counter()
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == "mlservice_grpc_requests_total" and sample.labels["method"] == "ModelInfer":
                answered[sample.labels["code"]] += int(sample.value)
    # Every call a worker took was answered and its answer reached the client; calls sent once the
    # drain began were refused before any worker took them (UNAVAILABLE, or CANCELLED by gRPC).
    assert answered == Counter(OK=outcomes["ok"]), (answered, outcomes)
    assert set(outcomes) <= {"ok", "UNAVAILABLE", "CANCELLED"}, outcomes
    print(f"\nSIGTERM under gRPC load: clients saw {dict(outcomes)}; workers answered {dict(answered)}")  # noqa: T201


def test_hot_reload_reaches_grpc_in_every_worker(two_models_dir: Path, tmp_path: Path) -> None:
    store_root = tmp_path / "models"
    shutil.copytree(two_models_dir, store_root)
    port = free_port()
    env = production_env(store_root, port, tmp_path, MODEL_POLL_SECONDS="0.3")
    target = f"127.0.0.1:{env['GRPC_PORT']}"
    with running_server(production_command(), port, env, tmp_path, ready_path="/health/ready"):
        client = triton_grpc.InferenceServerClient(target)
        before = client.infer("sentiment", _inputs(TEXTS)).get_response().model_version
        store = ModelRegistry(store_root).store()
        current = store.load()
        published = store.publish(current.pipeline, current.metadata)
        assert published != before

        def every_call_answers_the_new_version() -> bool:
            versions = {client.infer("sentiment", _inputs(TEXTS)).get_response().model_version for _ in range(20)}
            return versions == {published}

        wait_until(every_call_answers_the_new_version, 15, "gRPC to answer with the new version")
        assert list(client.get_model_metadata("sentiment").versions) == [published]


def test_a_killed_worker_is_replaced_and_grpc_keeps_answering(two_models_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    env = production_env(two_models_dir, port, tmp_path)
    target = f"127.0.0.1:{env['GRPC_PORT']}"
    with running_server(production_command(), port, env, tmp_path) as server:

        def two_workers(without: int = 0) -> set[int] | None:
            pids = child_pids(server.process.pid)
            return pids if len(pids) == 2 and without not in pids else None

        workers = wait_until(two_workers, 20, "2 workers")
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        replaced = wait_until(lambda: two_workers(without=victim), 30, "the supervisor to replace the killed worker")
        newcomer = (replaced - workers).pop()
        health = health_pb2_grpc.HealthStub(grpc.insecure_channel(target))
        serving = health_pb2.HealthCheckResponse.SERVING
        wait_until(lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=2).status == serving, 20, "health")
        # New connections spread over both workers (SO_REUSEPORT): each call a fresh channel.
        outcomes: Counter[str] = Counter()
        for _ in range(40):
            try:
                triton_grpc.InferenceServerClient(target).infer("sentiment", _inputs(TEXTS))
                outcomes["ok"] += 1
            except InferenceServerException as error:  # the replacement may still be loading its model
                outcomes[str(error.status())] += 1
        assert set(outcomes) <= {"ok", "StatusCode.UNAVAILABLE"}, outcomes
        assert outcomes["ok"] >= 30, outcomes
        assert newcomer in child_pids(server.process.pid)
