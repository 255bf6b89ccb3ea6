"""The Open Inference Protocol (KServe V2) REST encoding of a text model's inputs and outputs.

A text model takes one BYTES tensor `text` of shape [n] and returns `label` (BYTES, [n]) and
`probabilities` (FP32, [n, classes]). Tensors travel as JSON, or with the binary tensor data
extension (which tritonclient uses by default): the body starts with `Inference-Header-Content-
Length` bytes of JSON, followed by each binary tensor in order. A BYTES element in binary is a
4-byte little-endian length and then its bytes; FP32 is little-endian IEEE 754.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from src.documents import DocumentError, read_json
from src.errors import BadRequestError, quoted
from src.serving.inference import Inference
from src.serving.text_rules import TextLimits, check_batch_size

HEADER_LENGTH = "inference-header-content-length"
INPUT_NAME = "text"
# Every model answers `label` and one of the others: `probabilities`, or `scores` for a model without them.
OUTPUT_NAMES = ("label", "probabilities", "scores")
TEXT_LOCATION = ("inputs", 0, "data")
SHAPE_LOCATION = ("inputs", 0, "shape")
_HEADER_LENGTH_VALUE = re.compile(r"[0-9]{1,10}")


@dataclass(frozen=True)
class InferRequest:
    """What a text model needs from an infer request: the texts, which outputs, in which encoding."""

    texts: list[str]
    request_id: str | None
    outputs: list[str] | None  # None: all of the model's outputs
    binary_outputs: set[str]
    all_binary: bool = False

    def chosen(self, model_outputs: list[str], model: str) -> tuple[list[str], set[str]]:
        """The outputs to send for a model with these outputs, and which of them in binary."""
        if self.outputs is None:
            return model_outputs, set(model_outputs) if self.all_binary else set()
        unknown = [name for name in self.outputs if name not in model_outputs]
        if unknown:
            raise BadRequestError(
                f"model {model} has no output {quoted(unknown[0])}; its outputs are {', '.join(model_outputs)}"
            )
        return self.outputs, self.binary_outputs


def _json_part(body: bytes, header_length: str | None) -> tuple[Any, bytes]:
    if header_length is None:
        split = len(body)
    else:
        if not _HEADER_LENGTH_VALUE.fullmatch(header_length) or int(header_length) > len(body):
            raise BadRequestError(f"Inference-Header-Content-Length {quoted(header_length)} does not fit the body")
        split = int(header_length)
    try:
        return read_json(body[:split], "the inference request", max_bytes=split), body[split:]
    except DocumentError as error:
        raise BadRequestError(error.message) from None


def text_count(shape: Any, limits: TextLimits) -> int:
    """How many texts a `text` tensor of this shape holds ([n] or [n, 1]), within MAX_BATCH_SIZE."""
    if not isinstance(shape, list) or not shape or not all(type(d) is int and d >= 0 for d in shape):
        raise BadRequestError("input 'text' needs a shape: a list of non-negative integers, e.g. [2]")
    if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
        raise BadRequestError(f"input 'text' must have shape [n] or [n, 1], not {quoted(shape)}")
    check_batch_size(shape[0], limits, SHAPE_LOCATION)
    return int(shape[0])


def _flat_texts(data: Any, count: int) -> list[str]:
    """The strings of `data` laid out as shape [n] or [n, 1] (a list of strings, or of one-string lists)."""
    if not isinstance(data, list) or len(data) != count:
        raise BadRequestError(f"input 'text' must hold {count} elements in 'data', as its shape says")
    texts = [item[0] if isinstance(item, list) and len(item) == 1 else item for item in data]
    if not all(isinstance(text, str) for text in texts):
        raise BadRequestError("input 'text' data must be strings, as a list [n] or a list of one-string lists [n, 1]")
    return texts


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


def _texts(tensor: dict[str, Any], binary: bytes, limits: TextLimits) -> tuple[list[str], int]:
    """The tensor's texts and how many bytes of the binary part they used."""
    if tensor.get("datatype") != "BYTES":
        raise BadRequestError(f"input 'text' must have datatype BYTES, not {quoted(tensor.get('datatype'))}")
    count = text_count(tensor.get("shape"), limits)
    parameters = tensor.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise BadRequestError("input 'text' parameters must be an object")
    size = parameters.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size < 0 or size > len(binary):
            raise BadRequestError("input 'text' binary_data_size does not fit the binary part of the body")
        return decode_bytes_elements(binary[:size], count), size
    return _flat_texts(tensor.get("data"), count), 0


def _requested_outputs(document: dict[str, Any]) -> tuple[list[str] | None, set[str], bool]:
    parameters = document.get("parameters") or {}
    binary_default = isinstance(parameters, dict) and parameters.get("binary_data_output") is True
    requested = document.get("outputs")
    if requested is None:
        return None, set(), binary_default
    if not isinstance(requested, list) or not all(isinstance(o, dict) for o in requested):
        raise BadRequestError("'outputs' must be a list of objects")
    names: list[str] = []
    binary = set()
    for output in requested:
        name = output.get("name")
        if name not in OUTPUT_NAMES:
            raise BadRequestError(
                f"unknown output {quoted(name)}; a model's outputs are among {', '.join(OUTPUT_NAMES)}"
            )
        if name in names:
            raise BadRequestError(f"output {name!r} is asked for more than once")
        names.append(name)
        options = output.get("parameters") or {}
        if (isinstance(options, dict) and options.get("binary_data") is True) or binary_default:
            binary.add(name)
    return names, binary, False


def parse_infer_request(body: bytes, header_length: str | None, limits: TextLimits) -> InferRequest:
    """The texts and output choices of an infer request body, or BadRequestError saying what is wrong."""
    document, binary = _json_part(body, header_length)
    if not isinstance(document, dict):
        raise BadRequestError("the inference request must be a JSON object")
    inputs = document.get("inputs")
    if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
        raise BadRequestError("'inputs' must be a list of tensors")
    names = [tensor.get("name") for tensor in inputs]
    if names != [INPUT_NAME]:
        raise BadRequestError(f"this model takes exactly one input, 'text' (BYTES, [n]); got {names}")
    texts, used = _texts(inputs[0], binary, limits)
    if used != len(binary):
        raise BadRequestError("the body holds binary data that no input claims")
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequestError("'id' must be a string")
    outputs, binary_outputs, all_binary = _requested_outputs(document)
    return InferRequest(texts, request_id, outputs, binary_outputs, all_binary)


def output_tensor(name: str, inference: Inference) -> tuple[str, list[int], bytes, list[Any]]:
    """One output of an answer, as every protocol sends it: datatype, shape, its little-endian bytes
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


FEEDBACK_TOKEN_PARAMETER = "feedback_token"


def feedback_parameter(tokens: list[str]) -> str:
    """The `feedback_token` response parameter: one token per text, in order, joined by commas (the
    protocol's parameters are single values; a token never holds a comma)."""
    return ",".join(tokens)


def encode_infer_response(request: InferRequest, inference: Inference) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers: JSON, or JSON then binary tensors when any were asked so."""
    names, binary_outputs = request.chosen(["label", inference.output], inference.model_name)
    outputs: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name in names:
        datatype, shape, raw, values = output_tensor(name, inference)
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": shape}
        if name in binary_outputs:
            tensor["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            tensor["data"] = values
        outputs.append(tensor)
    document: dict[str, Any] = {
        "model_name": inference.model_name,
        "model_version": inference.model_version,
        "outputs": outputs,
    }
    if request.request_id is not None:
        document["id"] = request.request_id
    if inference.feedback_tokens:
        document["parameters"] = {FEEDBACK_TOKEN_PARAMETER: feedback_parameter(inference.feedback_tokens)}
    head = json.dumps(document, separators=(",", ":")).encode()
    if not blobs:
        return head, {"content-type": "application/json"}
    headers = {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(head))}
    return head + b"".join(blobs), headers
