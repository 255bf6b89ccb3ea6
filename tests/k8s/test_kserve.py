"""The KServe example: the runtime and the InferenceService agree, and the runtime's container, run
as the manifest says, serves the InferenceService's model over the Open Inference Protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.e2e.servers import free_port, production_command, request, running_server
from tests.k8s.tools import ROOT

OVERLAY = ROOT / "k8s-overlays" / "kserve"


def _load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((OVERLAY / name).read_text())
    return document


def test_the_inference_service_uses_the_runtime() -> None:
    runtime, service = _load("servingruntime.yaml"), _load("inferenceservice.yaml")
    model = service["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["modelFormat"]["name"] in [f["name"] for f in runtime["spec"]["supportedModelFormats"]]
    assert model["protocolVersion"] in runtime["spec"]["protocolVersions"]
    assert model["storageUri"] == "pvc://model-pvc/"  # the claim k8s/persistence.yaml makes
    assert "name: model-pvc" in (ROOT / "k8s" / "persistence.yaml").read_text()


@pytest.mark.e2e
def test_the_runtime_container_serves_the_inference_service(two_models_dir: Path, tmp_path: Path) -> None:
    runtime, service = _load("servingruntime.yaml"), _load("inferenceservice.yaml")
    (container,) = runtime["spec"]["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["MODEL_DIR"] == "/mnt/models"  # where KServe mounts the storageUri; here, a real store
    (port_spec,) = container["ports"]
    assert env["PORT"] == str(port_spec["containerPort"])
    port = free_port()
    env.update(MODEL_DIR=str(two_models_dir), PORT=str(port), HOST="127.0.0.1", WORKERS="1", GRPC_PORT=str(free_port()))
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    with running_server(production_command(), port, env, tmp_path) as server:
        for probe in ("readinessProbe", "livenessProbe"):
            assert request(server.url(container[probe]["httpGet"]["path"])).status == 200
        name = service["metadata"]["name"]
        assert request(server.url(f"/v2/models/{name}/ready")).status == 200
        body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["A wonderful film."]}]}
        answer = request(server.url(f"/v2/models/{name}/infer"), body=body).json()
        assert answer["model_name"] == name
        assert answer["outputs"][0]["data"] == ["positive"]
        assert "v1" in runtime["spec"]["protocolVersions"]  # an InferenceService may ask for V1 too
        v1 = request(server.url(f"/v1/models/{name}:predict"), body={"instances": ["A wonderful film."]}).json()
        assert v1 == {"predictions": ["positive"]}


@pytest.mark.e2e
def test_the_grpc_runtime_serves_the_grpc_inference_service(two_models_dir: Path, tmp_path: Path) -> None:
    runtime, service = _load("servingruntime-grpc.yaml"), _load("inferenceservice-grpc.yaml")
    model = service["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["protocolVersion"] in runtime["spec"]["protocolVersions"] == ["grpc-v2"]
    (container,) = runtime["spec"]["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    (port_spec,) = container["ports"]
    assert port_spec["name"] == "h2c"  # how KServe finds a runtime's gRPC port
    assert env["GRPC_PORT"] == str(port_spec["containerPort"]) == str(container["readinessProbe"]["grpc"]["port"])
    port, grpc_port = free_port(), free_port()
    env.update(MODEL_DIR=str(two_models_dir), PORT=str(port), HOST="127.0.0.1", WORKERS="1", GRPC_PORT=str(grpc_port))
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    target = f"127.0.0.1:{grpc_port}"
    with running_server(production_command(), port, env, tmp_path):
        probe = container["readinessProbe"]["grpc"]["service"]
        health = health_pb2_grpc.HealthStub(grpc.insecure_channel(target))
        assert (
            health.Check(health_pb2.HealthCheckRequest(service=probe)).status == health_pb2.HealthCheckResponse.SERVING
        )
        text = triton_grpc.InferInput("text", [1], "BYTES")
        text.set_data_from_numpy(np.array([b"A wonderful film."], dtype=object))
        answer = triton_grpc.InferenceServerClient(target).infer("sentiment", [text])
        assert answer.as_numpy("label").tolist() == [b"positive"]
