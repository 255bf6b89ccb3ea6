"""One verdict per input on every protocol: the same texts, accepted or refused for the same rule.

Each input goes to /predict, /predict/batch, /models/{name}/predict[/batch], V2 infer as JSON and
with binary tensors, gRPC ModelInfer, V1 predict (labels, and probabilities when asked) and MLflow's
invocations in each of its formats. A refusal must name the same rule everywhere (422 on the JSON
routes, 400 on V2 and V1 and MLflow's BAD_REQUEST, INVALID_ARGUMENT over gRPC, as each protocol says);
an acceptance must give the same label, and the same probabilities where the protocol carries them.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from src.api.grpc.protocol import open_inference_pb2 as oip
from src.api.grpc.service import InferenceService
from src.api.main import create_app
from src.tenants.access import Access
from tests.api.grpc.test_service import AbortedError, Context
from tests.conftest import make_settings

MAX_TEXT = 100
MAX_BATCH = 3
CLASSES = ["negative", "positive"]
Scores = tuple[str, dict[str, float] | None]  # a label, and the probabilities where the protocol sends them
Verdict = tuple[str, Scores | str]


def _json_verdict(response: Any, many: bool) -> list[Verdict]:
    if response.status_code == 422:
        return [("refused", response.json()["detail"][0]["msg"])]
    assert response.status_code == 200, response.text
    body = response.json()
    results = body["predictions"] if many else [body]
    return [("ok", (r["label"], r["probabilities"])) for r in results]


def _v2_verdict(response: Any) -> list[Verdict]:
    if response.status_code == 400:
        return [("refused", response.json()["error"].split(" (at ")[0])]
    assert response.status_code == 200, response.text
    length = response.headers.get("inference-header-content-length")
    head = json.loads(response.content[: int(length)] if length else response.content)
    outputs = {output["name"]: output for output in head["outputs"]}
    classes = CLASSES
    if length:
        raw = response.content[int(length) :]
        labels_size = outputs["label"]["parameters"]["binary_data_size"]
        labels, offset = [], 0
        while offset < labels_size:
            (size,) = struct.unpack_from("<I", raw, offset)
            labels.append(raw[offset + 4 : offset + 4 + size].decode())
            offset += 4 + size
        floats = struct.unpack(f"<{2 * len(labels)}f", raw[labels_size:])
    else:
        labels, floats = outputs["label"]["data"], outputs["probabilities"]["data"]
    return [("ok", (label, {c: floats[2 * i + k] for k, c in enumerate(classes)})) for i, label in enumerate(labels)]


def _v2_json(client: TestClient, texts: list[str]) -> list[Verdict]:
    request = {"inputs": [{"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": texts}]}
    return _v2_verdict(client.post("/v2/models/sentiment/infer", json=request))


def _v2_binary(client: TestClient, texts: list[str]) -> list[Verdict]:
    raw = b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in texts)
    tensor = {"name": "text", "shape": [len(texts)], "datatype": "BYTES", "parameters": {"binary_data_size": len(raw)}}
    head = json.dumps(
        {
            "inputs": [tensor],
            "outputs": [{"name": n, "parameters": {"binary_data": True}} for n in ("label", "probabilities")],
        }
    ).encode()
    headers = {"Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"}
    return _v2_verdict(client.post("/v2/models/sentiment/infer", content=head + raw, headers=headers))


def _grpc(client: TestClient, texts: list[str]) -> list[Verdict]:
    service: InferenceService = cast(FastAPI, client.app).state.grpc_service
    message = oip.ModelInferRequest(model_name="sentiment")
    tensor = message.inputs.add(name="text", datatype="BYTES", shape=[len(texts)])
    tensor.contents.bytes_contents.extend(text.encode() for text in texts)
    context = Context()
    try:
        answer = service.ModelInfer(message, context)
    except AbortedError:
        assert context.status is not None
        code, details = context.status
        assert code == grpc.StatusCode.INVALID_ARGUMENT, context.status
        return [("refused", details.split(" (at ")[0])]
    raw = answer.raw_output_contents
    labels, offset = [], 0
    while offset < len(raw[0]):
        (size,) = struct.unpack_from("<I", raw[0], offset)
        labels.append(raw[0][offset + 4 : offset + 4 + size].decode())
        offset += 4 + size
    floats = struct.unpack(f"<{2 * len(labels)}f", raw[1])
    return [("ok", (label, {c: floats[2 * i + k] for k, c in enumerate(CLASSES)})) for i, label in enumerate(labels)]


def _error_message(response: Any) -> list[Verdict]:
    body = response.json()
    assert response.status_code == 400, body
    return [("refused", (body.get("error") or body["message"]).split(" (at ")[0])]


def _v1(client: TestClient, texts: list[str]) -> list[Verdict]:
    instances: list[Any] = [text if i % 2 else {"text": text} for i, text in enumerate(texts)]  # both forms
    response = client.post("/v1/models/sentiment:predict", json={"instances": instances})
    if response.status_code != 200:
        return _error_message(response)
    return [("ok", (label, None)) for label in response.json()["predictions"]]


def _v1_probabilities(client: TestClient, texts: list[str]) -> list[Verdict]:
    request = {"instances": texts, "parameters": {"probabilities": True}}
    response = client.post("/v1/models/sentiment:predict", json=request)
    if response.status_code != 200:
        return _error_message(response)
    body = response.json()
    verdicts: list[Verdict] = []
    for row in body["predictions"]:
        probabilities = dict(zip(body["output_labels"], row, strict=True))
        verdicts.append(("ok", (max(probabilities, key=probabilities.__getitem__), probabilities)))
    return verdicts


def _mlflow(shape: Callable[[list[str]], dict[str, Any] | bytes]) -> Callable[[TestClient, list[str]], list[Verdict]]:
    def send(client: TestClient, texts: list[str]) -> list[Verdict]:
        body = shape(texts)
        if isinstance(body, bytes):
            response = client.post("/invocations", content=body, headers={"Content-Type": "text/csv"})
        else:
            response = client.post("/invocations", json=body)
        if response.status_code != 200:
            return _error_message(response)
        return [("ok", (label, None)) for label in response.json()["predictions"]]

    return send


def _csv(texts: list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows([["text"], *([text] for text in texts)])
    return out.getvalue().encode()


def _one(path: str) -> Callable[[TestClient, list[str]], list[Verdict]]:
    def send(client: TestClient, texts: list[str]) -> list[Verdict]:
        verdicts: list[Verdict] = []
        for text in texts:  # one text per request
            verdicts += _json_verdict(client.post(path, json={"text": text}), many=False)
        return verdicts

    return send


def _batch(path: str) -> Callable[[TestClient, list[str]], list[Verdict]]:
    def send(client: TestClient, texts: list[str]) -> list[Verdict]:
        return _json_verdict(client.post(path, json={"texts": texts}), many=True)

    return send


PROTOCOLS = {
    "/predict": _one("/predict"),
    "/models/sentiment/predict": _one("/models/sentiment/predict"),
    "/predict/batch": _batch("/predict/batch"),
    "/models/sentiment/predict/batch": _batch("/models/sentiment/predict/batch"),
    "V2 JSON": _v2_json,
    "V2 binary": _v2_binary,
    "gRPC": _grpc,
    "V1": _v1,
    "V1 probabilities": _v1_probabilities,
    "MLflow dataframe_split": _mlflow(
        lambda texts: {"dataframe_split": {"columns": ["text"], "data": [[t] for t in texts]}}
    ),
    "MLflow dataframe_records": _mlflow(lambda texts: {"dataframe_records": [{"text": t} for t in texts]}),
    "MLflow instances": _mlflow(lambda texts: {"instances": texts}),
    "MLflow inputs": _mlflow(lambda texts: {"inputs": {"text": texts}}),
    "MLflow CSV": _mlflow(_csv),
}
SINGLE_TEXT = {"/predict", "/models/sentiment/predict"}
BATCH_ONLY = set(PROTOCOLS) - SINGLE_TEXT

TEXTS = {
    "good text": (["A wonderful, moving film."], None),
    "empty": ([""], "at least one non-whitespace character"),
    "spaces": (["   "], "at least one non-whitespace character"),
    "unicode spaces": (["\u3000\u2003\ufeff"], "at least one non-whitespace character"),
    "too long": (["x" * (MAX_TEXT + 1)], f"text has {MAX_TEXT + 1} characters"),
    "expands under NFKD": (["\ufdfa" * 20], "expands to 360 characters"),
}
BATCHES = {
    "no texts": ([], "at least one text is needed"),
    "too many texts": (["fine"] * (MAX_BATCH + 1), f"batch has {MAX_BATCH + 1} texts"),
}


@pytest.fixture(scope="module")
def client(model_dir: Path) -> Iterator[TestClient]:
    settings = make_settings(model_dir, max_text_length=MAX_TEXT, max_batch_size=MAX_BATCH)
    loop = asyncio.new_event_loop()  # the gRPC servicer's calls run on an event loop, as in a worker
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    with TestClient(create_app(settings)) as test_client:
        state = cast(FastAPI, test_client.app).state
        state.grpc_service = InferenceService(
            state.data_plane, Access(None, None, None), loop, rollout_key_header="x-rollout-key"
        )
        yield test_client
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def _check(client: TestClient, texts: list[str], rule: str | None, protocols: list[str]) -> None:
    verdicts = {name: PROTOCOLS[name](client, texts) for name in protocols}
    if rule is not None:
        for name, got in verdicts.items():
            assert len(got) == 1, (name, got)
            assert got[0][0] == "refused", (name, got)
            assert rule in str(got[0][1]), (name, got)
        return
    reference = [scores for _, scores in verdicts["/predict/batch"] if not isinstance(scores, str)]
    for name, got in verdicts.items():
        assert [v[0] for v in got] == ["ok"] * len(texts), (name, got)
        scores = [s for _, s in got if not isinstance(s, str)]
        for (label, probabilities), (ref_label, ref_probabilities) in zip(scores, reference, strict=True):
            assert label == ref_label, name
            if probabilities is None or ref_probabilities is None:
                continue  # a protocol that answers labels only
            for c, p in ref_probabilities.items():
                assert probabilities[c] == pytest.approx(p, abs=1e-6), name  # V2 sends FP32


@pytest.mark.parametrize("case", list(TEXTS))
def test_every_protocol_gives_a_text_the_same_verdict(client: TestClient, case: str) -> None:
    texts, rule = TEXTS[case]
    _check(client, texts, rule, list(PROTOCOLS))


@pytest.mark.parametrize("case", list(BATCHES))
def test_every_batch_protocol_gives_a_batch_the_same_verdict(client: TestClient, case: str) -> None:
    texts, rule = BATCHES[case]
    _check(client, texts, rule, sorted(BATCH_ONLY))


def test_a_batch_with_several_good_texts_agrees_everywhere(client: TestClient) -> None:
    _check(client, ["Great acting.", "Dull and far too long.", "Not bad at all."], None, sorted(BATCH_ONLY))


HALF_A_CHARACTER = [
    ("/predict", b'{"text": "fine \\ud800"}'),
    ("/predict/batch", b'{"texts": ["fine", "fine \\udfff"]}'),
    (
        "/v2/models/sentiment/infer",
        b'{"inputs":[{"name":"text","datatype":"BYTES","shape":[1],"data":["fine \\ud800"]}]}',
    ),
    ("/v1/models/sentiment:predict", b'{"instances": ["fine \\ud800"]}'),
    ("/invocations", b'{"instances": ["fine \\ud800"]}'),
    ("/invocations", b'{"dataframe_split": {"columns": ["text"], "data": [["fine \\ud800"]]}}'),
]


@pytest.mark.parametrize(("path", "body"), HALF_A_CHARACTER)
def test_a_lone_surrogate_is_refused_on_every_protocol(client: TestClient, path: str, body: bytes) -> None:
    """JSON can escape half of a UTF-16 pair; V2 and V1 and MLflow used to score it (200) where /predict
    refuses it and gRPC and binary tensors cannot carry it: now every protocol refuses."""
    answer = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code in (400, 422), (path, answer.status_code, answer.text)
    assert "surrogate" in answer.text or "invalid JSON" in answer.text
    half = "fine \ud800".encode("utf-8", "surrogatepass")  # what a byte-carrying protocol would get
    assert _v2_binary_raw(client, half).status_code == 400


def _v2_binary_raw(client: TestClient, element: bytes) -> Any:
    raw = struct.pack("<I", len(element)) + element
    tensor = {"name": "text", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": len(raw)}}
    head = json.dumps({"inputs": [tensor]}).encode()
    headers = {"Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"}
    return client.post("/v2/models/sentiment/infer", content=head + raw, headers=headers)
