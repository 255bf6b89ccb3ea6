"""One verdict per input on every protocol: the same texts, accepted or refused for the same rule.

Each input goes to /predict, /predict/batch, /models/{name}/predict[/batch], V2 infer as JSON and
V2 infer with binary tensors. A refusal must name the same rule everywhere (422 on the JSON routes,
400 on V2, as that protocol says); an acceptance must give the same label and probabilities.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from src.api.main import create_app
from tests.conftest import make_settings

MAX_TEXT = 100
MAX_BATCH = 3
Scores = tuple[str, dict[str, float]]
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
    classes = ["negative", "positive"]
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
}
BATCH_ONLY = {"/predict/batch", "/models/sentiment/predict/batch", "V2 JSON", "V2 binary"}

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
    with TestClient(create_app(settings)) as test_client:
        yield test_client


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
