"""The Open Inference Protocol's REST encoding (src/api/open_inference.py holds the protocol itself).

Tensors travel as JSON, or with the binary tensor data extension (which tritonclient uses by
default): the body starts with `Inference-Header-Content-Length` bytes of JSON, followed by each
binary tensor in order, BYTES elements length-prefixed and FP32 little-endian IEEE 754.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from src.api.open_inference import (
    FEEDBACK_TOKEN_PARAMETER,
    check_element_count,
    check_input,
    check_output_names,
    chosen_outputs,
    decode_bytes_elements,
    feedback_parameter,
    output_tensor,
    text_count,
)
from src.documents import DocumentError, encode_json, read_json
from src.errors import BadRequestError, quoted
from src.serving.inference import Inference
from src.serving.text_rules import TextLimits

HEADER_LENGTH = "inference-header-content-length"
TEXT_LOCATION = ("inputs", 0, "data")
_HEADER_LENGTH_VALUE = re.compile(r"[0-9]{1,10}")


@dataclass(frozen=True)
class InferRequest:
    """What a text model needs from an infer request: the texts, which outputs, in which encoding."""

    texts: list[str]
    request_id: str | None
    outputs: list[str] | None  # None: all of the model's outputs
    binary_outputs: set[str]
    all_binary: bool = False

    def chosen(self, inference: Inference) -> tuple[list[str], set[str]]:
        """The outputs to send for this answer, and which of them in binary."""
        names = chosen_outputs(self.outputs, inference)
        if self.outputs is None:
            return names, set(names) if self.all_binary else set()
        return names, self.binary_outputs


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


def _flat_texts(data: Any, count: int) -> list[str]:
    """The strings of `data` laid out as shape [n] or [n, 1] (a list of strings, or of one-string lists)."""
    if not isinstance(data, list):
        raise BadRequestError("input 'text' data must be a list")
    check_element_count(len(data), count, "'data'")
    texts = [item[0] if isinstance(item, list) and len(item) == 1 else item for item in data]
    if not all(isinstance(text, str) for text in texts):
        raise BadRequestError("input 'text' data must be strings, as a list [n] or a list of one-string lists [n, 1]")
    return texts


def _texts(tensor: dict[str, Any], binary: bytes, limits: TextLimits) -> tuple[list[str], int]:
    """The tensor's texts and how many bytes of the binary part they used."""
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
    names = check_output_names([output.get("name") for output in requested])
    binary = set()
    for name, output in zip(names, requested, strict=True):
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
    check_input([tensor.get("name") for tensor in inputs], inputs[0].get("datatype") if inputs else None)
    texts, used = _texts(inputs[0], binary, limits)
    if used != len(binary):
        raise BadRequestError("the body holds binary data that no input claims")
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequestError("'id' must be a string")
    outputs, binary_outputs, all_binary = _requested_outputs(document)
    return InferRequest(texts, request_id, outputs, binary_outputs, all_binary)


def encode_infer_response(request: InferRequest, inference: Inference) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers: JSON, or JSON then binary tensors when any were asked so."""
    names, binary_outputs = request.chosen(inference)
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
    head = encode_json(document)
    if not blobs:
        return head, {"content-type": "application/json"}
    headers = {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(head))}
    return head + b"".join(blobs), headers
