"""The Open Inference Protocol routes with plain HTTP requests, as in the protocol's examples."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from src.api.main import create_app
from tests.conftest import SECOND_MODEL, make_settings

TEXTS = ["A wonderful, moving film.", "Dull, boring and far too long."]


def test_server_and_model_metadata_and_health(client: TestClient) -> None:
    server = client.get("/v2").json()
    assert server["name"] == "ml-service"
    assert "binary_tensor_data" in server["extensions"]
    live, ready = client.get("/v2/health/live"), client.get("/v2/health/ready")
    assert (live.status_code, live.json()) == (200, {"live": True})  # the bodies KServe's SDK reads
    assert (ready.status_code, ready.json()) == (200, {"ready": True})
    model = client.get("/v2/models/sentiment/ready")
    assert (model.status_code, model.json()) == (200, {"name": "sentiment", "ready": True})
    metadata = client.get("/v2/models/sentiment").json()
    version = metadata["versions"][0]
    assert metadata["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert [o["name"] for o in metadata["outputs"]] == ["label", "probabilities"]
    assert metadata["parameters"]["classes"] == ["negative", "positive"]
    assert client.get(f"/v2/models/sentiment/versions/{version}").json() == metadata
    assert client.get(f"/v2/models/sentiment/versions/{version}/ready").status_code == 200


def test_json_infer_equals_predict(client: TestClient) -> None:
    request = {
        "id": "42",
        "inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": TEXTS}],
    }
    response = client.post("/v2/models/sentiment/infer", json=request)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "42"
    assert body["model_name"] == "sentiment"
    label, probabilities = body["outputs"]
    assert label == {"name": "label", "datatype": "BYTES", "shape": [2], "data": ["positive", "negative"]}
    assert probabilities["datatype"] == "FP32"
    assert probabilities["shape"] == [2, 2]
    for index, text in enumerate(TEXTS):
        expected = client.post("/predict", json={"text": text}).json()["probabilities"]
        got = probabilities["data"][2 * index : 2 * index + 2]
        assert got == pytest.approx([expected["negative"], expected["positive"]], abs=1e-7)
        assert np.float32(expected["positive"]) == np.float32(got[1])


def _bytes_tensor(texts: list[str]) -> bytes:
    return b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in texts)


def test_binary_infer_round_trips(client: TestClient) -> None:
    raw = _bytes_tensor(TEXTS)
    head = json.dumps(
        {
            "inputs": [
                {"name": "text", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": len(raw)}}
            ],
            "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}, {"name": "label"}],
        }
    ).encode()
    response = client.post(
        "/v2/models/sentiment/infer",
        content=head + raw,
        headers={"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(head))},
    )
    assert response.status_code == 200
    split = int(response.headers["inference-header-content-length"])
    document = json.loads(response.content[:split])
    probabilities, label = document["outputs"]
    assert label["data"] == ["positive", "negative"]
    assert probabilities["parameters"]["binary_data_size"] == 16
    values = np.frombuffer(response.content[split:], dtype="<f4").reshape(2, 2)
    assert values[0, 1] > 0.5 > values[1, 1]
    assert np.allclose(values.sum(axis=1), 1.0)


@pytest.mark.parametrize(
    ("request_body", "status", "words"),
    [
        ({"inputs": [{"name": "text", "shape": [2], "datatype": "FP32", "data": [1.0, 2.0]}]}, 400, "datatype BYTES"),
        ({"inputs": [{"name": "text", "shape": [3], "datatype": "BYTES", "data": ["a"]}]}, 400, "3 elements"),
        ({"inputs": [{"name": "words", "shape": [1], "datatype": "BYTES", "data": ["a"]}]}, 400, "exactly one input"),
        ({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [5]}]}, 400, "must be strings"),
        ({"inputs": [{"name": "text", "shape": [1, 2], "datatype": "BYTES", "data": ["a", "b"]}]}, 400, "shape"),
        ({"inputs": "text"}, 400, "'inputs' must be a list"),
        (
            {
                "inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["a"]}],
                "outputs": [{"name": "x"}],
            },
            400,
            "unknown output",
        ),
        ({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["x" * 20_001]}]}, 400, "MAX_TEXT"),
    ],
)
def test_malformed_requests_get_400_with_an_error(
    client: TestClient, request_body: dict[str, object], status: int, words: str
) -> None:
    response = client.post("/v2/models/sentiment/infer", json=request_body)
    assert response.status_code == status
    assert words in response.json()["error"]


def test_broken_binary_and_json_get_400(client: TestClient) -> None:
    head = json.dumps(
        {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": 6}}]}
    ).encode()
    for body, header in (
        (head + b"\x09\x00\x00\x00ab", str(len(head))),  # an element longer than the data
        (head + b"\x02\x00\x00\x00ab", "99999"),  # a header length past the body
        (b"{not json", None),
        (head + _bytes_tensor(["\udcff".encode("utf-8", "surrogatepass").decode("latin-1"), "b"])[:6], str(len(head))),
    ):
        headers = {"Inference-Header-Content-Length": header} if header else {}
        response = client.post("/v2/models/sentiment/infer", content=body, headers=headers)
        assert response.status_code == 400
        assert response.json()["error"]


def test_unknown_model_or_version_is_404(client: TestClient) -> None:
    request = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["fine"]}]}
    for path in ("/v2/models/topics/infer", "/v2/models/sentiment/versions/v0/infer", "/v2/models/topics"):
        response = client.post(path, json=request) if path.endswith("infer") else client.get(path)
        assert response.status_code == 404
        assert "error" in response.json()
    assert client.get("/v2/models/topics/ready").status_code == 404


def test_not_ready_and_keys(tmp_path: Path, model_dir: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path))) as empty:
        not_ready = empty.get("/v2/health/ready")
        assert (not_ready.status_code, not_ready.json()) == (400, {"ready": False})
        model = empty.get("/v2/models/sentiment/ready")
        assert (model.status_code, model.json()) == (400, {"name": "sentiment", "ready": False})
        request = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["fine"]}]}
        response = empty.post("/v2/models/sentiment/infer", json=request)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert "model sentiment is not loaded" in response.json()["error"]
    with TestClient(create_app(make_settings(model_dir, api_keys="k"))) as keyed:
        request = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["fine"]}]}
        assert keyed.post("/v2/models/sentiment/infer", json=request).status_code == 401
        assert keyed.post("/v2/models/sentiment/infer", json=request, headers={"X-API-Key": "k"}).status_code == 200
        # A model's readiness names the model: it needs a key; the server's probes do not.
        assert keyed.get("/v2/models/sentiment/ready").status_code == 401
        assert keyed.get("/v2/models/sentiment/ready", headers={"X-API-Key": "k"}).status_code == 200
        assert keyed.get("/v2/health/ready").status_code == 200


def test_infer_is_counted_under_its_route_template(client: TestClient) -> None:
    request = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["fine"]}]}
    assert client.post("/v2/models/sentiment/infer", json=request).status_code == 200
    exposition = client.get("/metrics").text
    assert 'route="/v2/models/{name}/infer"' in exposition


def test_each_model_is_a_v2_model(two_models_client: TestClient) -> None:
    metadata = two_models_client.get(f"/v2/models/{SECOND_MODEL}").json()
    assert metadata["parameters"]["classes"] == ["review", "tweet"]
    assert metadata["outputs"][1]["shape"] == [-1, 2]
    tensor = {"name": "text", "datatype": "BYTES", "shape": [1], "data": ["lol cant wait"]}
    answer = two_models_client.post(f"/v2/models/{SECOND_MODEL}/infer", json={"inputs": [tensor]}).json()
    assert answer["model_name"] == SECOND_MODEL
    assert answer["outputs"][0]["data"] == ["tweet"]
    version = metadata["versions"][0]
    pinned = two_models_client.post(f"/v2/models/{SECOND_MODEL}/versions/{version}/infer", json={"inputs": [tensor]})
    assert pinned.json()["model_version"] == version
    assert two_models_client.get(f"/v2/models/{SECOND_MODEL}/versions/{version}/ready").status_code == 200
