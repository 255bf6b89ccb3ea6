"""tritonclient, unchanged, against the production server: JSON and binary tensors agree with /predict."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.conftest import SECOND_MODEL
from tests.e2e.servers import Server, free_port, production_command, production_env, request, running_server

pytestmark = pytest.mark.e2e

TEXTS = ["A wonderful, moving film.", "Dull, boring and far too long.", "Not bad at all, actually pretty good."]


@pytest.fixture(scope="module")
def server(two_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The production server with two models: the default `sentiment` and SECOND_MODEL."""
    tmp_path = tmp_path_factory.mktemp("v2")
    port = free_port()
    env = production_env(two_models_dir, port, tmp_path)
    with running_server(production_command(), port, env, tmp_path) as running:
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
    with pytest.raises(InferenceServerException, match="no model named 'topics'"):
        client.infer("topics", [tensor])
    wrong = triton.InferInput("text", [1], "FP32")
    wrong.set_data_from_numpy(np.array([1.0], dtype=np.float32))
    with pytest.raises(InferenceServerException, match="datatype BYTES"):
        client.infer("sentiment", [wrong])


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_two_models_side_by_side_agree_with_their_json_routes(
    client: triton.InferenceServerClient, server: Server, binary: bool
) -> None:
    texts = ["@jess omg cant wait for tonight!!! lol", "The second act drags, but the lead performance is superb."]
    assert client.is_model_ready(SECOND_MODEL)
    assert client.get_model_metadata(SECOND_MODEL)["parameters"]["classes"] == ["review", "tweet"]
    for model, classes in (("sentiment", ["negative", "positive"]), (SECOND_MODEL, ["review", "tweet"])):
        tensor = triton.InferInput("text", [len(texts)], "BYTES")
        tensor.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object), binary_data=binary)
        outputs = [triton.InferRequestedOutput(name, binary_data=binary) for name in ("label", "probabilities")]
        result = client.infer(model, [tensor], outputs=outputs)
        labels = [label.decode() if isinstance(label, bytes) else label for label in result.as_numpy("label")]
        batch = request(server.url(f"/models/{model}/predict/batch"), body={"texts": texts}).json()
        assert labels == [p["label"] for p in batch["predictions"]]
        expected = np.array([[p["probabilities"][c] for c in classes] for p in batch["predictions"]], "f4")
        assert np.array_equal(result.as_numpy("probabilities"), expected)
        assert result.get_response()["model_version"] == batch["model_version"]
    assert labels == ["tweet", "review"]
