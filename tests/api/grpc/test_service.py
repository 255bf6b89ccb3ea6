"""The servicer's policy without a network: keys and the status of each error."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from fastapi.testclient import TestClient

from src.api.grpc.protocol import open_inference_pb2 as oip
from src.api.grpc.service import InferenceService, status_of
from src.api.main import create_app
from src.errors import InvalidInputError, ModelNotReadyError, UnknownModelError
from src.serving.dataplane import DataPlane
from src.tenants.access import Access
from tests.conftest import make_settings
from tests.tenants.test_keys import KEY_A, KEY_B, write_keys


class AbortedError(Exception):
    pass


class Context:
    """What a servicer asks of grpc.ServicerContext."""

    def __init__(self, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self.metadata = metadata
        self.status: tuple[grpc.StatusCode, str] | None = None
        self.trailing: tuple[tuple[str, str], ...] = ()

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.metadata

    def time_remaining(self) -> float:
        return 2.0**62  # as gRPC says for a call without a deadline

    def send_initial_metadata(self, metadata: Any) -> None:
        pass

    def set_trailing_metadata(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.trailing = metadata

    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.status = (code, details)
        raise AbortedError


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def _service(
    client: Any, loop: asyncio.AbstractEventLoop, *, keys: tuple[bytes, ...] = (), key_file: Path | None = None
) -> InferenceService:
    plane: DataPlane = client.app.state.data_plane
    access = Access(",".join(key.decode() for key in keys) or None, None, key_file)
    return InferenceService(plane, access, loop, rollout_key_header="x-rollout-key")


def _infer_request() -> oip.ModelInferRequest:
    message = oip.ModelInferRequest(model_name="sentiment")
    message.inputs.add(name="text", datatype="BYTES", shape=[1]).contents.bytes_contents.append(b"fine")
    return message


def test_keys_come_from_metadata(client: Any, loop: asyncio.AbstractEventLoop) -> None:
    service = _service(client, loop, keys=(b"k1",))
    for metadata, code in (
        ((), grpc.StatusCode.UNAUTHENTICATED),
        ((("x-api-key", "no"),), grpc.StatusCode.PERMISSION_DENIED),
    ):
        context = Context(metadata)
        with pytest.raises(AbortedError):
            service.ModelInfer(_infer_request(), context)
        assert context.status is not None
        assert context.status[0] == code
    answer = service.ModelInfer(_infer_request(), Context((("x-api-key", "k1"),)))
    assert [o.name for o in answer.outputs] == ["label", "probabilities"]
    assert service.ServerLive(oip.ServerLiveRequest(), Context()).live  # health needs no key


def _refusal(service: InferenceService, method: str, message: Any, key: str) -> tuple[grpc.StatusCode, str]:
    context = Context((("x-api-key", key),))
    with pytest.raises(AbortedError):
        getattr(service, method)(message, context)
    assert context.status is not None
    return context.status


def test_scopes_models_and_rates_over_grpc(client: Any, loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    service = _service(client, loop, key_file=write_keys(tmp_path / "keys.yaml", KEY_A + KEY_B))
    other = oip.ModelInferRequest(model_name="nope-not-mine")
    other.inputs.add(name="text", datatype="BYTES", shape=[1]).contents.bytes_contents.append(b"fine")
    code, message = _refusal(service, "ModelInfer", other, "secret-a")
    assert code == grpc.StatusCode.NOT_FOUND  # not served: A is told only of its own models
    assert "models: sentiment)" in message
    code, message = _refusal(service, "ModelMetadata", oip.ModelMetadataRequest(name="sentiment"), "secret-a")
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "does not have the 'read' scope" in message
    answers = 0
    for _ in range(25):  # a burst of 20
        context = Context((("x-api-key", "secret-a"),))
        try:
            service.ModelInfer(_infer_request(), context)
            answers += 1
        except AbortedError:
            assert context.status is not None
            assert context.status[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert dict(context.trailing)["retry-after"] == "1"
    assert 15 <= answers < 25  # the burst, less the refused call above, plus what the rate refilled
    answer = service.ModelInfer(_infer_request(), Context((("x-api-key", "secret-b"),)))  # B is not slowed
    assert answer.model_name == "sentiment"


def test_grpc_answers_carry_feedback_tokens(model_dir: Path, tmp_path: Path, loop: asyncio.AbstractEventLoop) -> None:
    with TestClient(create_app(make_settings(model_dir, prediction_log_dir=tmp_path))) as logged:
        service = _service(logged, loop)
        message = oip.ModelInferRequest(model_name="sentiment")
        contents = message.inputs.add(name="text", datatype="BYTES", shape=[3]).contents
        contents.bytes_contents.extend([b"fine", b"awful", b"fine"])
        answer = service.ModelInfer(message, Context())
        tokens = answer.parameters["feedback_token"].string_param.split(",")
        assert len(set(tokens)) == 3
        claims = logged.app.state.feedback.tokens.check(tokens[2])  # type: ignore[attr-defined]
        assert (claims.index, claims.model, claims.key_id) == (2, "sentiment", "anonymous")


def test_errors_map_to_the_protocols_codes() -> None:
    assert status_of(InvalidInputError("blank", loc=("inputs", 0, "contents", "bytes_contents", 3))) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "blank (at inputs.0.contents.bytes_contents.3)",
    )
    assert status_of(UnknownModelError("x", ["sentiment"]))[0] == grpc.StatusCode.NOT_FOUND
    assert status_of(ModelNotReadyError("x", "loading"))[0] == grpc.StatusCode.UNAVAILABLE
