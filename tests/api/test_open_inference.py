"""The Open Inference Protocol once: REST's JSON and gRPC's messages give the same verdicts, the same
bytes and the same metadata, because both encodings read and write it through one module."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest

from src.api.grpc import codec as grpc_codec
from src.api.grpc.protocol import open_inference_pb2 as oip
from src.api.open_inference import check_output_names, decode_bytes_elements, model_parameters, model_tensors
from src.api.v2 import codec as rest_codec
from src.errors import BadRequestError, InvalidInputError
from src.serving.inference import Inference, ModelMetadata
from src.serving.predictor import Prediction
from src.serving.text_rules import TextLimits

LIMITS = TextLimits(max_text_length=100, max_batch_size=4)
MODEL = ModelMetadata(
    name="m",
    versions=["v1"],
    classes=["negative", "positive"],
    engine="compiled",
    output="probabilities",
    output_labels=["negative", "positive"],
)


def _both(
    texts: list[str], *, name: str = "text", datatype: str = "BYTES", shape: list[int] | None = None, outputs=()
) -> tuple[bytes, oip.ModelInferRequest]:
    shape = shape if shape is not None else [len(texts)]
    rest = {"inputs": [{"name": name, "datatype": datatype, "shape": shape, "data": texts}]}
    if outputs:
        rest["outputs"] = [{"name": output} for output in outputs]
    message = oip.ModelInferRequest(model_name="m")
    tensor = message.inputs.add(name=name, datatype=datatype, shape=shape)
    tensor.contents.bytes_contents.extend(text.encode() for text in texts)
    for output in outputs:
        message.outputs.add(name=output)
    return json.dumps(rest).encode(), message


def _verdicts(texts: list[str], **shape: Any) -> tuple[str, str]:
    rest, grpc_message = _both(texts, **shape)
    verdicts = []
    for parse in (
        lambda: rest_codec.parse_infer_request(rest, None, LIMITS),
        lambda: grpc_codec.parse_infer_request(grpc_message, LIMITS),
    ):
        with pytest.raises((BadRequestError, InvalidInputError)) as caught:
            parse()
        verdicts.append(caught.value.message)
    return verdicts[0], verdicts[1]


@pytest.mark.parametrize(
    ("texts", "shape", "words"),
    [
        (["a"], {"name": "review"}, "exactly one input, 'text'"),
        (["a"], {"datatype": "FP32"}, "datatype BYTES, not 'FP32'"),
        (["a", "b"], {"shape": [2, 2]}, "shape [n] or [n, 1]"),
        (["a"] * 5, {}, "MAX_BATCH_SIZE"),
        (["a"], {"outputs": ("logits",)}, "unknown output 'logits'"),
        (["a"], {"outputs": ("label", "label")}, "output 'label' is asked for more than once"),
        (["a"], {"shape": [3]}, "must hold 3 elements"),
    ],
)
def test_rest_and_grpc_refuse_alike(texts: list[str], shape: dict[str, Any], words: str) -> None:
    rest, grpc_verdict = _verdicts(texts, **shape)
    assert words in rest
    if "elements" in words:  # each names where its elements go: 'data' or bytes_contents
        assert words in grpc_verdict
    else:
        assert rest == grpc_verdict


def _inference() -> Inference:
    prediction = Prediction(
        label="positive", probabilities={"negative": 0.25, "positive": 0.75}, tokens=1, unknown_tokens=0
    )
    return Inference(
        model_name="m",
        model_version="v1",
        classes=["negative", "positive"],
        predictions=[prediction],
        output="probabilities",
        output_labels=["negative", "positive"],
    )


def test_rest_binary_and_grpc_send_the_same_bytes() -> None:
    rest = rest_codec.InferRequest(["a"], None, None, set(), all_binary=True)
    body, headers = rest_codec.encode_infer_response(rest, _inference())
    head = int(headers[rest_codec.HEADER_LENGTH])
    grpc_request = grpc_codec.GrpcInferRequest("m", None, "r", ["a"], None)
    answer = grpc_codec.encode_infer_response(grpc_request, _inference())
    assert body[head:] == b"".join(answer.raw_output_contents)
    assert decode_bytes_elements(answer.raw_output_contents[0], 1) == ["positive"]
    assert struct.unpack("<2f", answer.raw_output_contents[1]) == (0.25, 0.75)


def test_an_output_the_model_lacks_is_refused_alike() -> None:
    with pytest.raises(BadRequestError) as rest:
        rest_codec.encode_infer_response(rest_codec.InferRequest(["a"], None, ["scores"], set()), _inference())
    with pytest.raises(BadRequestError) as grpc_refusal:
        grpc_codec.encode_infer_response(grpc_codec.GrpcInferRequest("m", None, "r", ["a"], ["scores"]), _inference())
    assert (
        rest.value.message
        == grpc_refusal.value.message
        == ("model m has no output 'scores'; its outputs are label, probabilities")
    )


def test_metadata_is_the_same_on_both() -> None:
    inputs, outputs = model_tensors(MODEL)
    message = grpc_codec.encode_model_metadata(MODEL)
    assert [(t.name, t.datatype, list(t.shape)) for t in message.inputs] == [("text", "BYTES", [-1])]
    assert (
        [(t.name, t.datatype, list(t.shape)) for t in message.outputs]
        == [(spec.name, spec.datatype, spec.shape) for spec in outputs]
        == [("label", "BYTES", [-1]), ("probabilities", "FP32", [-1, 2])]
    )
    assert [spec.name for spec in inputs] == ["text"]
    assert {key: json.loads(value) if key != "engine" else value for key, value in message.properties.items()} == (
        model_parameters(MODEL)
    )


def test_output_names_are_checked_in_order() -> None:
    assert check_output_names(["scores", "label"]) == ["scores", "label"]
    with pytest.raises(BadRequestError, match="unknown output 7"):
        check_output_names([7])
