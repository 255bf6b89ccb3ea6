"""The Open Inference Protocol's gRPC encoding (src/api/open_inference.py holds the protocol itself).

The messages are generated from the protocol's proto (src/api/grpc/protocol/open_inference.proto).
The texts come in `contents.bytes_contents` or in `raw_input_contents`; the outputs go in
`raw_output_contents` as Triton sends them, the same bytes as the REST binary encoding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from src.api.grpc.protocol import open_inference_pb2 as oip
from src.api.open_inference import (
    FEEDBACK_TOKEN_PARAMETER,
    TensorSpec,
    check_element_count,
    check_input,
    check_output_names,
    chosen_outputs,
    decode_bytes_elements,
    feedback_parameter,
    model_parameters,
    model_tensors,
    output_tensor,
    text_count,
    utf8,
)
from src.errors import BadRequestError
from src.serving.inference import Inference, ModelMetadata
from src.serving.text_rules import TextLimits

TEXT_LOCATION = ("inputs", 0, "contents", "bytes_contents")
RAW_TEXT_LOCATION = ("raw_input_contents", 0)


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
    check_input([tensor.name for tensor in request.inputs], request.inputs[0].datatype if request.inputs else None)
    tensor = request.inputs[0]
    count = text_count(list(tensor.shape), limits)
    if request.raw_input_contents:
        if len(request.raw_input_contents) != 1:
            raise BadRequestError("raw_input_contents must hold one entry, for input 'text'")
        if tensor.HasField("contents"):
            raise BadRequestError("input 'text' has both contents and raw_input_contents")
        texts = decode_bytes_elements(request.raw_input_contents[0], count)
    else:
        elements = tensor.contents.bytes_contents
        check_element_count(len(elements), count, "bytes_contents")
        texts = [utf8(element) for element in elements]
    outputs = check_output_names([output.name for output in request.outputs]) if request.outputs else None
    raw = bool(request.raw_input_contents)
    return GrpcInferRequest(request.model_name, request.model_version or None, request.id, texts, outputs, raw)


def encode_infer_response(request: GrpcInferRequest, inference: Inference) -> oip.ModelInferResponse:
    """The answer with its outputs in raw_output_contents, in the order asked (else label, then the other)."""
    names = chosen_outputs(request.outputs, inference)
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


def _tensor_metadata(spec: TensorSpec) -> oip.ModelMetadataResponse.TensorMetadata:
    return oip.ModelMetadataResponse.TensorMetadata(name=spec.name, datatype=spec.datatype, shape=spec.shape)


def encode_model_metadata(model: ModelMetadata) -> oip.ModelMetadataResponse:
    """A model's metadata as REST gives it; the protocol's properties are strings, so lists are JSON."""
    inputs, outputs = model_tensors(model)
    properties = {
        key: value if isinstance(value, str) else json.dumps(value) for key, value in model_parameters(model).items()
    }
    return oip.ModelMetadataResponse(
        name=model.name,
        versions=model.versions,
        platform=model.platform,
        inputs=[_tensor_metadata(spec) for spec in inputs],
        outputs=[_tensor_metadata(spec) for spec in outputs],
        properties=properties,
    )
