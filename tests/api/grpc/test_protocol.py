"""The generated messages are protoc's output for open_inference.proto, and speak the protocol on the wire."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tritonclient.grpc import service_pb2 as triton

from src.api.grpc.protocol import open_inference_pb2 as oip

PROTOCOL = Path(oip.__file__).parent


def test_the_committed_modules_are_what_protoc_makes_of_the_proto(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTOCOL}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            "open_inference.proto",
        ],
        check=True,
        cwd=PROTOCOL,
    )
    for name in ("open_inference_pb2.py", "open_inference_pb2.pyi"):
        assert (tmp_path / name).read_text() == (PROTOCOL / name).read_text(), f"{name}: run `make protocol`"


def _triton_request() -> triton.ModelInferRequest:
    message = triton.ModelInferRequest(model_name="sentiment", model_version="7", id="r1")
    message.parameters["priority"].int64_param = 3
    message.parameters["sequence_start"].bool_param = True
    message.parameters["tag"].string_param = "a"
    text = message.inputs.add(name="text", datatype="BYTES", shape=[2, 1])
    text.contents.bytes_contents.extend([b"good", b"bad"])
    text.parameters["binary_data_size"].uint64_param = 15
    wanted = message.outputs.add(name="probabilities")
    wanted.parameters["classification"].int64_param = 2
    message.raw_input_contents.append(b"\x04\x00\x00\x00good")
    return message


def test_a_clients_request_reads_the_same_in_our_messages() -> None:
    # Field numbers are the protocol: tritonclient's request, read with our messages and written again,
    # is the same bytes (protobuf writes fields in number order, maps entry by entry as given).
    sent = _triton_request()
    received = oip.ModelInferRequest.FromString(sent.SerializeToString())
    assert received.model_name == "sentiment"
    assert received.model_version == "7"
    assert received.inputs[0].shape == [2, 1]
    assert list(received.inputs[0].contents.bytes_contents) == [b"good", b"bad"]
    assert received.parameters["priority"].int64_param == 3
    assert received.inputs[0].parameters["binary_data_size"].uint64_param == 15
    assert received.outputs[0].parameters["classification"].int64_param == 2
    assert received.SerializeToString(deterministic=True) == sent.SerializeToString(deterministic=True)


def test_our_answers_read_the_same_in_a_clients_messages() -> None:
    answer = oip.ModelInferResponse(model_name="sentiment", model_version="7", id="r1")
    answer.outputs.add(name="label", datatype="BYTES", shape=[1])
    answer.outputs.add(name="probabilities", datatype="FP32", shape=[1, 2])
    answer.raw_output_contents.extend([b"\x08\x00\x00\x00positive", b"\x00\x00\x80>\x00\x00@?"])
    read = triton.ModelInferResponse.FromString(answer.SerializeToString())
    assert read.SerializeToString(deterministic=True) == answer.SerializeToString(deterministic=True)
    assert [output.name for output in read.outputs] == ["label", "probabilities"]
    metadata = oip.ModelMetadataResponse(name="sentiment", versions=["7"], platform="scikit-learn")
    metadata.inputs.add(name="text", datatype="BYTES", shape=[-1])
    read_metadata = triton.ModelMetadataResponse.FromString(metadata.SerializeToString())
    assert read_metadata.inputs[0].shape == [-1]
    assert read_metadata.platform == "scikit-learn"
    for ours, theirs in [
        (oip.ServerLiveResponse(live=True), triton.ServerLiveResponse),
        (oip.ServerReadyResponse(ready=True), triton.ServerReadyResponse),
        (oip.ModelReadyResponse(ready=True), triton.ModelReadyResponse),
        (oip.ServerMetadataResponse(name="ml-service", version="2", extensions=["x"]), triton.ServerMetadataResponse),
    ]:
        assert theirs.FromString(ours.SerializeToString()).SerializeToString() == ours.SerializeToString()
