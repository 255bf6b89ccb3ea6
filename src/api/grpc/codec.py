"""The Open Inference Protocol's gRPC messages for a text model, from and to the data plane's terms.

The messages are generated from the protocol's proto (src/api/grpc/protocol/open_inference.proto).
A text model takes one BYTES tensor `text` of shape [n] or [n, 1], its elements in
`contents.bytes_contents` or in `raw_input_contents` (each element a 4-byte little-endian length
and its bytes), and answers `label` (BYTES, [n]) and `probabilities` (FP32, [n, classes]) or
`scores`, in `raw_output_contents` as Triton does; the bytes are those the REST binary encoding
sends (src/api/v2/codec.py), so every protocol answers a text bit for bit alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from src.api.grpc.protocol import open_inference_pb2 as oip
from src.api.v2.codec import (
    FEEDBACK_TOKEN_PARAMETER,
    INPUT_NAME,
    OUTPUT_NAMES,
    decode_bytes_elements,
    feedback_parameter,
    output_tensor,
    text_count,
    utf8,
)
from src.errors import BadRequestError, quoted
from src.serving.inference import Inference
from src.serving.text_rules import TextLimits

TEXT_LOCATION = ("inputs", 0, "contents", "bytes_contents")
RAW_TEXT_LOCATION = ("raw_input_contents", 0)
SHAPE_LOCATION = ("inputs", 0, "shape")


@dataclass(frozen=True)
class GrpcInferRequest:
    """What a text model needs from a ModelInferRequest."""

    model: str
    version: str | None
    request_id: str
    texts: list[str]
    outputs: list[str] | None  # None: the model's outputs
    raw: bool = False  # the texts came in raw_input_contents

    def text_location(self, index: int) -> tuple[str | int, ...]:
        """Where the request holds its index-th text, for an error naming it."""
        return (*(RAW_TEXT_LOCATION if self.raw else TEXT_LOCATION), index)


def parse_infer_request(request: oip.ModelInferRequest, limits: TextLimits) -> GrpcInferRequest:
    """The texts and outputs asked for, or BadRequestError naming what is wrong."""
    names = [tensor.name for tensor in request.inputs]
    if names != [INPUT_NAME]:
        raise BadRequestError(f"this model takes exactly one input, 'text' (BYTES, [n]); got {names}")
    tensor = request.inputs[0]
    if tensor.datatype != "BYTES":
        raise BadRequestError(f"input 'text' must have datatype BYTES, not {quoted(tensor.datatype)}")
    count = text_count(list(tensor.shape), limits)
    if request.raw_input_contents:
        if len(request.raw_input_contents) != 1:
            raise BadRequestError("raw_input_contents must hold one entry, for input 'text'")
        if tensor.HasField("contents"):
            raise BadRequestError("input 'text' has both contents and raw_input_contents")
        texts = decode_bytes_elements(request.raw_input_contents[0], count)
    else:
        elements = tensor.contents.bytes_contents
        if len(elements) != count:
            raise BadRequestError(f"input 'text' must hold {count} elements in bytes_contents, as its shape says")
        texts = [utf8(element) for element in elements]
    outputs = None
    if request.outputs:
        outputs = [output.name for output in request.outputs]
        for name in outputs:
            if name not in OUTPUT_NAMES:
                raise BadRequestError(
                    f"unknown output {quoted(name)}; a model's outputs are among {', '.join(OUTPUT_NAMES)}"
                )
        if len(set(outputs)) != len(outputs):
            raise BadRequestError("an output is asked for more than once")
    raw = bool(request.raw_input_contents)
    return GrpcInferRequest(request.model_name, request.model_version or None, request.id, texts, outputs, raw)


def encode_infer_response(request: GrpcInferRequest, inference: Inference) -> oip.ModelInferResponse:
    """The answer with its outputs in raw_output_contents, in the order asked (else label, then the other)."""
    model_outputs = ["label", inference.output]
    names = request.outputs or model_outputs
    unknown = [name for name in names if name not in model_outputs]
    if unknown:
        raise BadRequestError(
            f"model {inference.model_name} has no output {quoted(unknown[0])}; its outputs are "
            f"{', '.join(model_outputs)}"
        )
    response = oip.ModelInferResponse(
        model_name=inference.model_name, model_version=inference.model_version, id=request.request_id
    )
    for name in names:
        datatype, shape, raw, _ = output_tensor(name, inference)
        response.outputs.add(name=name, datatype=datatype, shape=shape)
        response.raw_output_contents.append(raw)
    if inference.feedback_tokens:
        response.parameters[FEEDBACK_TOKEN_PARAMETER].string_param = feedback_parameter(inference.feedback_tokens)
    return response
