"""ModelInferRequest to texts and back: both text encodings, and what is refused with which words."""

from __future__ import annotations

import struct

import pytest

from src.api.grpc.codec import encode_infer_response, parse_infer_request
from src.api.grpc.protocol import open_inference_pb2 as oip
from src.errors import BadRequestError, InvalidInputError
from src.serving.inference import Inference
from src.serving.predictor import Prediction
from src.serving.text_rules import TextLimits

LIMITS = TextLimits(max_text_length=100, max_batch_size=4)


def _request(texts: list[str], *, raw: bool = False, shape: list[int] | None = None) -> oip.ModelInferRequest:
    message = oip.ModelInferRequest(model_name="m", model_version="v1", id="r1")
    tensor = message.inputs.add(name="text", datatype="BYTES", shape=shape or [len(texts)])
    if raw:
        message.raw_input_contents.append(b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in texts))
    else:
        tensor.contents.bytes_contents.extend(t.encode() for t in texts)
    return message


@pytest.mark.parametrize("raw", [False, True])
def test_both_encodings_give_the_texts(raw: bool) -> None:
    parsed = parse_infer_request(_request(["ça va", "🎬 ok"], raw=raw, shape=[2, 1]), LIMITS)
    assert parsed.texts == ["ça va", "🎬 ok"]
    assert (parsed.model, parsed.version, parsed.request_id, parsed.raw) == ("m", "v1", "r1", raw)
    assert parsed.text_location(1)[-1] == 1


def _refused(message: oip.ModelInferRequest, words: str) -> None:
    with pytest.raises((BadRequestError, InvalidInputError)) as caught:
        parse_infer_request(message, LIMITS)
    assert words in caught.value.message


def test_what_is_refused() -> None:
    both = _request(["a"])
    both.raw_input_contents.append(struct.pack("<I", 1) + b"a")
    _refused(both, "both contents and raw_input_contents")
    two_raw = _request(["a"], raw=True)
    two_raw.raw_input_contents.append(b"")
    _refused(two_raw, "one entry")
    short = _request(["abc"], raw=True)
    short.raw_input_contents[0] = short.raw_input_contents[0][:-1]
    _refused(short, "shorter than its elements")
    _refused(_request(["a", "b"], shape=[2, 2]), "shape [n] or [n, 1]")
    _refused(_request(["a"] * 5), "limit is 4 (MAX_BATCH_SIZE)")
    unknown = _request(["a"])
    unknown.outputs.add(name="logits")
    _refused(unknown, "unknown output 'logits'")
    twice = _request(["a"])
    twice.outputs.add(name="label")
    twice.outputs.add(name="label")
    _refused(twice, "more than once")


def test_the_answer_is_raw_little_endian_in_the_order_asked() -> None:
    inference = Inference(
        "m",
        "v1",
        ["negative", "positive"],
        [Prediction("positive", {"negative": 0.25, "positive": 0.75}, 2, 0)],
        output_labels=["negative", "positive"],
    )
    asked = _request(["a"])
    asked.outputs.add(name="probabilities")
    asked.outputs.add(name="label")
    answer = encode_infer_response(parse_infer_request(asked, LIMITS), inference)
    assert [o.name for o in answer.outputs] == ["probabilities", "label"]
    assert list(answer.outputs[0].shape) == [1, 2]
    assert answer.raw_output_contents[0] == struct.pack("<2f", 0.25, 0.75)
    assert answer.raw_output_contents[1] == struct.pack("<I", 8) + b"positive"
    scores = _request(["a"])
    scores.outputs.add(name="scores")
    with pytest.raises(BadRequestError, match="has no output 'scores'"):
        encode_infer_response(parse_infer_request(scores, LIMITS), inference)
