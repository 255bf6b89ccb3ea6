"""V2 infer against an attacker's requests: each answered 4xx in the protocol's format, and bounded."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

INFER = "/v2/models/sentiment/infer"


def _texts(n: int = 1, **tensor: object) -> dict[str, object]:
    return {"inputs": [{"name": "text", "shape": [n], "datatype": "BYTES", "data": ["a"] * n, **tensor}]}


def test_an_output_asked_for_many_times_is_refused_not_multiplied(client: TestClient) -> None:
    request = {**_texts(256), "outputs": [{"name": "probabilities"}] * 2000}
    response = client.post(INFER, json=request)
    assert response.status_code == 400
    assert response.json() == {"error": "output 'probabilities' is asked for more than once"}


def test_an_unknown_output_is_named_at_most_80_characters(client: TestClient) -> None:
    response = client.post(INFER, json={**_texts(), "outputs": [{"name": "x" * 5000}]})
    assert response.status_code == 400
    assert len(response.json()["error"]) < 200


def test_deeply_nested_data_is_a_400_not_a_500(client: TestClient) -> None:
    nested = "[" * 1000 + '"a"' + "]" * 1000
    body = '{"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ' + nested + "}]}"
    response = client.post(INFER, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    nested = "[" * 100_000 + "]" * 100_000  # past the JSON parser's own recursion limit
    response = client.post(INFER, content=nested, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "nested over 64 levels deep" in response.json()["error"]


@pytest.mark.parametrize("value", ["-1", "1e3", "99999999999", " 12"])
def test_a_header_length_that_is_not_ascii_digits_fitting_the_body_is_a_400(client: TestClient, value: str) -> None:
    body = json.dumps(_texts()).encode()
    response = client.post(INFER, content=body, headers={"Inference-Header-Content-Length": value})
    assert response.status_code == 400
    assert "Inference-Header-Content-Length" in response.json()["error"]


@pytest.mark.parametrize("shape", [[True], [1.0], ["1"], [-1], [1, 2], []])
def test_a_shape_must_be_non_negative_integers(client: TestClient, shape: list[object]) -> None:
    request = {"inputs": [{"name": "text", "shape": shape, "datatype": "BYTES", "data": ["a"]}]}
    assert client.post(INFER, json=request).status_code == 400


def test_a_utf16_body_is_refused_as_on_the_json_routes(client: TestClient) -> None:
    body = json.dumps(_texts()).encode("utf-16")
    response = client.post(INFER, content=body)
    assert response.status_code == 400
    assert "not UTF-8" in response.json()["error"]
    assert client.post("/predict", content=json.dumps({"text": "a"}).encode("utf-16")).status_code == 422


def test_a_shape_over_the_batch_limit_is_refused_before_its_data_is_decoded(client: TestClient) -> None:
    request = {"inputs": [{"name": "text", "shape": [10**9], "datatype": "BYTES", "data": ["a"]}]}
    response = client.post(INFER, json=request)
    assert response.status_code == 400
    assert "the limit is 256 (MAX_BATCH_SIZE)" in response.json()["error"]


def test_echoed_versions_are_cut_short_everywhere(client: TestClient) -> None:
    version = "v" * 5000
    for path in (f"/v2/models/sentiment/versions/{version}/ready", f"/v2/models/sentiment/versions/{version}"):
        response = client.get(path)
        assert response.status_code == 404
        assert len(response.content) < 300
    response = client.post(f"/v2/models/sentiment/versions/{version}/infer", json=_texts())
    assert response.status_code == 404
    assert len(response.content) < 300


def test_every_v2_error_is_an_error_object_with_retry_after_on_503(client: TestClient) -> None:
    response = client.post(INFER, content=b"x" * 3_000_000)
    assert response.status_code == 413
    assert "error" in response.json()
    response = client.get("/v2/models/nope")
    assert response.status_code == 404
    assert "error" in response.json()
