"""tritonclient, unchanged, against the production server: JSON and binary tensors agree with /predict."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.e2e.servers import Server, free_port, production_command, production_env, request, running_server

pytestmark = pytest.mark.e2e

TEXTS = ["A wonderful, moving film.", "Dull, boring and far too long.", "Not bad at all, actually pretty good."]


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp_path = tmp_path_factory.mktemp("v2")
    port = free_port()
    with running_server(production_command(), port, production_env(model_dir, port, tmp_path), tmp_path) as running:
        yield running


@pytest.fixture
def client(server: Server) -> Iterator[triton.InferenceServerClient]:
    connection = triton.InferenceServerClient(server.base_url.removeprefix("http://"))
    yield connection
    connection.close()


def test_health_and_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("sentiment")
    metadata = client.get_model_metadata("sentiment")
    assert metadata["inputs"][0] == {"name": "text", "datatype": "BYTES", "shape": [-1]}
    assert client.get_server_metadata()["name"] == "ml-service"


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_equals_predict(client: triton.InferenceServerClient, server: Server, binary: bool) -> None:
    tensor = triton.InferInput("text", [len(TEXTS)], "BYTES")
    tensor.set_data_from_numpy(np.array([t.encode() for t in TEXTS], dtype=object), binary_data=binary)
    outputs = [triton.InferRequestedOutput(name, binary_data=binary) for name in ("label", "probabilities")]
    result = client.infer("sentiment", [tensor], outputs=outputs)
    labels = [label.decode() if isinstance(label, bytes) else label for label in result.as_numpy("label")]
    probabilities = result.as_numpy("probabilities")
    assert probabilities.dtype == np.float32
    assert probabilities.shape == (len(TEXTS), 2)
    for index, text in enumerate(TEXTS):
        expected = request(server.url("/predict"), body={"text": text}).json()
        assert labels[index] == expected["label"]
        as_fp32 = np.array([expected["probabilities"]["negative"], expected["probabilities"]["positive"]], "f4")
        assert np.array_equal(probabilities[index], as_fp32)


def test_errors_reach_the_client(client: triton.InferenceServerClient) -> None:
    tensor = triton.InferInput("text", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([b"fine"], dtype=object))
    with pytest.raises(InferenceServerException, match="not served here"):
        client.infer("topics", [tensor])
    wrong = triton.InferInput("text", [1], "FP32")
    wrong.set_data_from_numpy(np.array([1.0], dtype=np.float32))
    with pytest.raises(InferenceServerException, match="datatype BYTES"):
        client.infer("sentiment", [wrong])
