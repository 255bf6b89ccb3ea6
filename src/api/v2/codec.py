"""The Open Inference Protocol (KServe V2) REST encoding of a text model's inputs and outputs.

A text model takes one BYTES tensor `text` of shape [n] and returns `label` (BYTES, [n]) and
`probabilities` (FP32, [n, classes]). Tensors travel as JSON, or with the binary tensor data
extension (which tritonclient uses by default): the body starts with `Inference-Header-Content-
Length` bytes of JSON, followed by each binary tensor in order. A BYTES element in binary is a
4-byte little-endian length and then its bytes; FP32 is little-endian IEEE 754.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from src.errors import ServiceError

HEADER_LENGTH = "inference-header-content-length"
INPUT_NAME = "text"
OUTPUT_NAMES = ("label", "probabilities")


class ProtocolError(ServiceError):
    """A request that breaks the protocol: 400, answered as `{"error": ...}`."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status_code=400)


@dataclass(frozen=True)
class InferRequest:
    """What a text model needs from an infer request: the texts, which outputs, in which encoding."""

    texts: list[str]
    request_id: str | None
    outputs: list[str]
    binary_outputs: set[str]


def _json_part(body: bytes, header_length: str | None) -> tuple[Any, bytes]:
    if header_length is None:
        split = len(body)
    else:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise ProtocolError(f"Inference-Header-Content-Length {header_length!r} does not fit the body")
        split = int(header_length)
    try:
        return json.loads(body[:split]), body[split:]
    except (ValueError, UnicodeDecodeError) as error:
        raise ProtocolError(f"the inference request is not valid JSON ({error})") from None


def _element_count(shape: Any) -> int:
    if not isinstance(shape, list) or not shape or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ProtocolError("input 'text' needs a shape: a list of non-negative integers, e.g. [2]")
    if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
        raise ProtocolError(f"input 'text' must have shape [n] or [n, 1], not {shape}")
    return math.prod(shape)


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    flat: list[Any] = []
    for item in data:
        flat.extend(_flatten(item))
    return flat


def _decode_bytes_tensor(raw: bytes, count: int) -> list[str]:
    texts: list[str] = []
    offset = 0
    for _ in range(count):
        if offset + 4 > len(raw):
            raise ProtocolError("binary data of input 'text' ends inside an element's length")
        (size,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + size > len(raw):
            raise ProtocolError("binary data of input 'text' is shorter than its elements' lengths")
        texts.append(_utf8(raw[offset : offset + size]))
        offset += size
    if offset != len(raw):
        raise ProtocolError("binary data of input 'text' holds more bytes than its shape's elements")
    return texts


def _utf8(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("input 'text' holds bytes that are not UTF-8 text") from None


def _texts(tensor: dict[str, Any], binary: bytes) -> tuple[list[str], int]:
    """The tensor's texts and how many bytes of the binary part they used."""
    if tensor.get("datatype") != "BYTES":
        raise ProtocolError(f"input 'text' must have datatype BYTES, not {tensor.get('datatype')!r}")
    count = _element_count(tensor.get("shape"))
    parameters = tensor.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ProtocolError("input 'text' parameters must be an object")
    size = parameters.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size < 0 or size > len(binary):
            raise ProtocolError("input 'text' binary_data_size does not fit the binary part of the body")
        return _decode_bytes_tensor(binary[:size], count), size
    data = _flatten(tensor.get("data"))
    if tensor.get("data") is None or len(data) != count:
        raise ProtocolError(f"input 'text' must hold {count} elements in 'data', as its shape says")
    if not all(isinstance(item, str) for item in data):
        raise ProtocolError("input 'text' data must be strings")
    return data, 0


def _requested_outputs(document: dict[str, Any]) -> tuple[list[str], set[str]]:
    parameters = document.get("parameters") or {}
    binary_default = isinstance(parameters, dict) and parameters.get("binary_data_output") is True
    requested = document.get("outputs")
    if requested is None:
        names = list(OUTPUT_NAMES)
        return names, set(names) if binary_default else set()
    if not isinstance(requested, list) or not all(isinstance(o, dict) for o in requested):
        raise ProtocolError("'outputs' must be a list of objects")
    names, binary = [], set()
    for output in requested:
        name = output.get("name")
        if name not in OUTPUT_NAMES:
            raise ProtocolError(f"unknown output {name!r}; this model has {', '.join(OUTPUT_NAMES)}")
        names.append(name)
        options = output.get("parameters") or {}
        if (isinstance(options, dict) and options.get("binary_data") is True) or binary_default:
            binary.add(name)
    return names, binary


def parse_infer_request(body: bytes, header_length: str | None) -> InferRequest:
    """The texts and output choices of an infer request body, or ProtocolError saying what is wrong."""
    document, binary = _json_part(body, header_length)
    if not isinstance(document, dict):
        raise ProtocolError("the inference request must be a JSON object")
    inputs = document.get("inputs")
    if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
        raise ProtocolError("'inputs' must be a list of tensors")
    names = [tensor.get("name") for tensor in inputs]
    if names != [INPUT_NAME]:
        raise ProtocolError(f"this model takes exactly one input, 'text' (BYTES, [n]); got {names}")
    texts, used = _texts(inputs[0], binary)
    if used != len(binary):
        raise ProtocolError("the body holds binary data that no input claims")
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise ProtocolError("'id' must be a string")
    outputs, binary_outputs = _requested_outputs(document)
    return InferRequest(texts, request_id, outputs, binary_outputs)


def encode_infer_response(
    request: InferRequest, model_name: str, model_version: str, classes: list[str], results: list[dict[str, Any]]
) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers: JSON, or JSON then binary tensors when any were asked so."""
    n = len(results)
    labels = [result["label"] for result in results]
    probabilities = np.array([[result["probabilities"][c] for c in classes] for result in results], dtype="<f4")
    outputs: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name in request.outputs:
        if name == "label":
            tensor: dict[str, Any] = {"name": "label", "datatype": "BYTES", "shape": [n]}
            raw = b"".join(struct.pack("<I", len(e)) + e for e in (label.encode() for label in labels))
            values: list[Any] = labels
        else:
            tensor = {"name": "probabilities", "datatype": "FP32", "shape": [n, len(classes)]}
            raw = probabilities.tobytes()
            values = probabilities.reshape(-1).tolist()
        if name in request.binary_outputs:
            tensor["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            tensor["data"] = values
        outputs.append(tensor)
    document: dict[str, Any] = {"model_name": model_name, "model_version": model_version, "outputs": outputs}
    if request.request_id is not None:
        document["id"] = request.request_id
    head = json.dumps(document, separators=(",", ":")).encode()
    if not blobs:
        return head, {"content-type": "application/json"}
    headers = {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(head))}
    return head + b"".join(blobs), headers
