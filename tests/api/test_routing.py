"""The route table: every route's policy read once, requests matched with Starlette's compiled regexes."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import grpc
import pytest
from fastapi.testclient import TestClient

from src.api.error_responses import JSON_ERRORS, V2_ERRORS
from src.api.grpc.service import status_of
from src.api.routing import RouteTable
from src.errors import ModelFailedError
from src.serving.predictor import Prediction, Predictor
from tests.api.test_route_policy import SCORING

DIRECT = SCORING  # every scoring route is dispatched directly


def test_paths_match_their_route_once_with_parameters(client: TestClient) -> None:
    table: RouteTable = client.app.state.routes  # type: ignore[attr-defined]
    predict = table.match("/predict")
    assert predict is not None
    assert (predict.policy.template, predict.path_params) == ("/predict", {})
    named = table.match("/v2/models/kinds/versions/v1/infer")
    assert named is not None
    assert named.policy.template == "/v2/models/{name}/versions/{version}/infer"
    assert named.path_params == {"name": "kinds", "version": "v1"}
    assert named.policy.errors is V2_ERRORS
    assert table.match("/models/a/b/predict") is None  # a parameter is one path segment
    assert table.match("/nowhere") is None
    health = table.match("/health")
    assert health is not None
    assert health.policy.errors is JSON_ERRORS
    assert health.policy.scope is None


def test_the_prediction_routes_are_dispatched_directly_and_still_documented(client: TestClient) -> None:
    table: RouteTable = client.app.state.routes  # type: ignore[attr-defined]
    direct = {p.template for p in [m.policy for m in table.literal.values()] + [p for _, p in table.templated]
              if p.handlers}  # fmt: skip
    assert direct == DIRECT
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/predict", "/predict/batch", "/models/{name}/predict", "/models/{name}/predict/batch"):
        assert "requestBody" in paths[path]["post"]
    named = paths["/models/{name}/predict"]["post"]
    assert [p["name"] for p in named["parameters"]] == ["name"]
    assert "404" in named["responses"]


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/predict", {"text": "fine"}, {"detail": "internal server error", "request_id": "trace-me"}),
        (
            "/v2/models/sentiment/infer",
            {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["fine"]}]},
            {"error": "internal server error (request id trace-me)"},
        ),
    ],
)
def test_a_bug_is_a_500_without_internals_in_the_routes_format_and_logged(
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    path: str,
    body: dict[str, object],
    expected: dict[str, str],
) -> None:
    class Broken:  # a bug of ours in an observer, after the model has scored
        def answered(self, *args: object) -> None:
            raise RuntimeError("secret internal detail")

        def failed(self, *args: object) -> None:
            pass

    plane = client.app.state.data_plane  # type: ignore[attr-defined]
    monkeypatch.setattr(plane, "observers", [*plane.observers, Broken()])
    with caplog.at_level(logging.ERROR):
        response = client.post(path, json=body, headers={"X-Request-ID": "trace-me"})
    assert response.status_code == 500
    assert response.json() == expected
    assert "secret internal detail" not in response.text
    assert any("trace-me" in record.getMessage() for record in caplog.records)
    assert 'status="500"' in client.get("/metrics").text


@pytest.mark.parametrize(
    ("path", "body", "status", "where"),
    [
        ("/predict/batch", {"texts": ["fine", "3 stars"]}, 422, ["body", "texts", 1]),
        (
            "/v2/models/sentiment/infer",
            {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["fine", "3 stars"]}]},
            400,
            "inputs.0.data.1",
        ),
    ],
)
def test_a_text_the_model_fails_on_is_named_not_a_bare_500(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, path: str, body: dict[str, object], status: int, where: object
) -> None:
    """Finding 9 of #27: a model raising on one text failed the batch with a bare 500 (INTERNAL on gRPC)."""
    original = Predictor.predict_batch

    def raises_on_numbers(self: Predictor, texts: Sequence[str]) -> list[Prediction]:
        if any(char.isdigit() for text in texts for char in text):
            raise ValueError("X out of bounds")
        return original(self, texts)

    monkeypatch.setattr(Predictor, "predict_batch", raises_on_numbers)
    response = client.post(path, json=body)
    assert response.status_code == status
    answer = response.json()
    message = answer["detail"][0]["msg"] if status == 422 else answer["error"]
    assert "failed on this text (ValueError)" in message
    if status == 422:
        assert answer["detail"][0]["loc"] == where
    else:
        assert str(where) in message


def test_over_grpc_a_failing_text_is_invalid_argument_naming_it() -> None:
    error = ModelFailedError("sentiment", "v1", ValueError("X out of bounds"), text_index=1)
    error.at(lambda index: ("inputs", 0, "bytes_contents", index), ("inputs", 0, "shape"))
    code, message = status_of(error)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "failed on this text (ValueError)" in message
    assert message.endswith("(at inputs.0.bytes_contents.1)")
