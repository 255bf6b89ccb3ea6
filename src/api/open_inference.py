"""The Open Inference Protocol (KServe V2) for a text model, once for REST and gRPC.

A text model takes one BYTES tensor `text` of shape [n] or [n, 1] and answers `label` (BYTES, [n])
and `probabilities` (FP32, [n, classes]), or `scores` for a model without probabilities. This module
holds what both encodings share: the checks of the input tensor and of the outputs asked for, the
BYTES element encoding (a 4-byte little-endian length, then the bytes), each output's datatype,
shape and bytes, and a model's metadata. `src/api/v2/codec.py` reads and writes it as JSON (and the
binary tensor extension), `src/api/grpc/codec.py` as the protocol's messages, so every protocol
answers a text bit for bit alike.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from src.errors import BadRequestError, quoted
from src.serving.inference import Inference, ModelMetadata
from src.serving.text_rules import TextLimits, check_batch_size

INPUT_NAME = "text"
# Every model answers `label` and one of the others: `probabilities`, or `scores` for a model without them.
OUTPUT_NAMES = ("label", "probabilities", "scores")
SHAPE_LOCATION = ("inputs", 0, "shape")
FEEDBACK_TOKEN_PARAMETER = "feedback_token"


@dataclass(frozen=True)
class TensorSpec:
    """A tensor as a model's metadata describes it (-1: any size)."""

    name: str
    datatype: str
    shape: list[int]


def check_input(names: Sequence[object], datatype: object) -> None:
    """BadRequestError unless the request has exactly the input `text`, of datatype BYTES."""
    if list(names) != [INPUT_NAME]:
        raise BadRequestError(f"this model takes exactly one input, 'text' (BYTES, [n]); got {list(names)}")
    if datatype != "BYTES":
        raise BadRequestError(f"input 'text' must have datatype BYTES, not {quoted(datatype)}")


def text_count(shape: Any, limits: TextLimits) -> int:
    """How many texts a `text` tensor of this shape holds ([n] or [n, 1]), within MAX_BATCH_SIZE."""
    if not isinstance(shape, list) or not shape or not all(type(d) is int and d >= 0 for d in shape):
        raise BadRequestError("input 'text' needs a shape: a list of non-negative integers, e.g. [2]")
    if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
        raise BadRequestError(f"input 'text' must have shape [n] or [n, 1], not {quoted(shape)}")
    check_batch_size(shape[0], limits, SHAPE_LOCATION)
    return int(shape[0])


def check_element_count(got: int, count: int, where: str) -> None:
    """BadRequestError unless the tensor's `where` holds as many elements as its shape says."""
    if got != count:
        raise BadRequestError(f"input 'text' must hold {count} elements in {where}, as its shape says")


def decode_bytes_elements(raw: bytes, count: int) -> list[str]:
    """`count` BYTES elements, each a 4-byte little-endian length and its UTF-8 bytes, and nothing more."""
    texts: list[str] = []
    offset = 0
    for _ in range(count):
        if offset + 4 > len(raw):
            raise BadRequestError("binary data of input 'text' ends inside an element's length")
        (size,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + size > len(raw):
            raise BadRequestError("binary data of input 'text' is shorter than its elements' lengths")
        texts.append(utf8(raw[offset : offset + size]))
        offset += size
    if offset != len(raw):
        raise BadRequestError("binary data of input 'text' holds more bytes than its shape's elements")
    return texts


def utf8(value: bytes) -> str:
    """A text element's string; BadRequestError for bytes that are not UTF-8."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestError("input 'text' holds bytes that are not UTF-8 text") from None


def check_output_names(names: Sequence[object]) -> list[str]:
    """The outputs a request asks for, each one the protocol knows and none twice."""
    checked: list[str] = []
    for name in names:
        if name not in OUTPUT_NAMES:
            raise BadRequestError(
                f"unknown output {quoted(name)}; a model's outputs are among {', '.join(OUTPUT_NAMES)}"
            )
        if name in checked:
            raise BadRequestError(f"output {quoted(name)} is asked for more than once")
        checked.append(str(name))
    return checked


def model_outputs(inference: Inference) -> list[str]:
    """The outputs the answering model has, in the order they are sent when none are asked for."""
    return ["label", inference.output]


def chosen_outputs(asked: list[str] | None, inference: Inference) -> list[str]:
    """The outputs to send: those asked for (each one the model has), else all of the model's."""
    outputs = model_outputs(inference)
    if asked is None:
        return outputs
    unknown = [name for name in asked if name not in outputs]
    if unknown:
        raise BadRequestError(
            f"model {inference.model_name} has no output {quoted(unknown[0])}; its outputs are {', '.join(outputs)}"
        )
    return asked


def output_tensor(name: str, inference: Inference) -> tuple[str, list[int], bytes, list[Any]]:
    """One output of an answer, as every encoding sends it: datatype, shape, its little-endian bytes
    (BYTES elements length-prefixed) and its values in row-major order."""
    predictions = inference.predictions
    n = len(predictions)
    if name == "label":
        labels = [prediction.label for prediction in predictions]
        raw = b"".join(struct.pack("<I", len(e)) + e for e in (label.encode() for label in labels))
        return "BYTES", [n], raw, labels
    rows = [(p.probabilities if name == "probabilities" else p.scores) or {} for p in predictions]
    width = len(inference.output_labels)
    matrix = np.array([list(row.values()) for row in rows], dtype="<f4").reshape(n, width)
    return "FP32", [n, width], matrix.tobytes(), matrix.reshape(-1).tolist()


def feedback_parameter(tokens: list[str]) -> str:
    """The `feedback_token` response parameter: one token per text, in order, joined by commas (the
    protocol's parameters are single values; a token never holds a comma)."""
    return ",".join(tokens)


def model_tensors(model: ModelMetadata) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """A model's inputs and outputs as its metadata lists them."""
    inputs = [TensorSpec(model.input, "BYTES", [-1])]
    outputs = [
        TensorSpec("label", "BYTES", [-1]),
        TensorSpec(model.output, "FP32", [-1, len(model.output_labels)]),
    ]
    return inputs, outputs


def model_parameters(model: ModelMetadata) -> dict[str, Any]:
    """A model's metadata parameters: its classes, engine and the class of each FP32 output column."""
    return {"classes": model.classes, "engine": model.engine, "output_labels": model.output_labels}
