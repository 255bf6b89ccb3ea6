"""Tenants against the production server (2 workers): the issue's two keys, over JSON, V2 REST and gRPC.

A (`models: [sentiment]`, `scopes: [predict]`, 20/s, burst 20) predicts with its model and is refused
another model, feedback, and, past its rate, answered 429 while B's requests at the same time all
succeed; the rate is one budget for the pod, not one per worker. B's correction with its own token is
taken once, in whichever worker it lands; a forged, foreign or second one is refused.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from tritonclient.grpc import service_pb2, service_pb2_grpc

from tests.conftest import SECOND_MODEL
from tests.e2e.servers import Reply, Server, free_port, production_command, production_env, request, running_server
from tests.tenants.test_keys import sha, write_keys

pytestmark = pytest.mark.e2e

A, B, C = {"X-API-Key": "secret-a"}, {"X-API-Key": "secret-b"}, {"X-API-Key": "secret-c"}
TEXT = {"text": "a fine, warm film"}
V2_TEXT = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["a fine film"]}]}
KEYS = f"""  - id: team-a
    sha256: {sha("secret-a")}
    models: [sentiment]
    scopes: [predict]
    rate: 20
    burst: 20
  - id: team-b
    sha256: {sha("secret-b")}
    models: ["*"]
    scopes: [predict, feedback, read]
  - id: team-c
    sha256: {sha("secret-c")}
    models: ["*"]
    scopes: [predict, feedback]
"""


@pytest.fixture(scope="module")
def served(two_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    tmp_path = tmp_path_factory.mktemp("tenants")
    port = free_port()
    keys = write_keys(tmp_path / "keys.yaml", KEYS)
    env = production_env(
        two_models_dir, port, tmp_path, API_KEYS_FILE=str(keys), PREDICTION_LOG_DIR=str(tmp_path / "logs")
    )
    with running_server(production_command(), port, env, tmp_path, ready_path="/health/ready") as server:
        yield server, f"127.0.0.1:{env['GRPC_PORT']}"


def test_a_key_is_held_to_its_model_and_scope_on_every_protocol(served: tuple[Server, str]) -> None:
    server, target = served
    assert request(server.url("/predict"), body=TEXT, headers=A).status == 200
    # Another model does not exist for this key: a 404 naming only its own, on every protocol.
    assert request(server.url(f"/models/{SECOND_MODEL}/predict"), body=TEXT, headers=A).status == 404
    assert (
        request(server.url("/feedback"), body={"feedback_token": "x.y", "label": "negative"}, headers=A).status == 403
    )
    assert request(server.url(f"/v2/models/{SECOND_MODEL}/infer"), body=V2_TEXT, headers=A).status == 404
    assert request(server.url("/v2/models/sentiment"), headers=A).status == 403  # metadata needs `read`
    assert request(server.url("/v2/models/sentiment"), headers=B).status == 200
    with grpc.insecure_channel(target) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        for call, message, code in (
            (stub.ModelInfer, _infer(SECOND_MODEL), grpc.StatusCode.NOT_FOUND),
            (stub.ModelMetadata, service_pb2.ModelMetadataRequest(name="sentiment"), grpc.StatusCode.PERMISSION_DENIED),
        ):
            with pytest.raises(grpc.RpcError) as refused:
                call(message, metadata=(("x-api-key", "secret-a"),), timeout=10)
            assert refused.value.code() == code
        assert stub.ModelInfer(_infer("sentiment"), metadata=(("x-api-key", "secret-b"),), timeout=10).outputs


def _infer(model: str) -> service_pb2.ModelInferRequest:
    message = service_pb2.ModelInferRequest(model_name=model)
    message.inputs.add(name="text", datatype="BYTES", shape=[1]).contents.bytes_contents.append(b"a fine film")
    return message


def test_past_its_rate_a_key_gets_429_and_the_other_key_is_not_slowed(served: tuple[Server, str]) -> None:
    server, target = served
    time.sleep(1.5)  # A's budget full again after the test before
    sent = 80
    keys = [A, B] * sent  # A's and B's requests interleaved, at the same time
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        started = time.monotonic()
        answers = list(pool.map(lambda key: request(server.url("/predict"), body=TEXT, headers=key), keys))
        elapsed = time.monotonic() - started
    a_answers, b_answers = answers[0::2], answers[1::2]
    accepted = sum(answer.status == 200 for answer in a_answers)
    limited = [answer for answer in a_answers if answer.status == 429]
    assert accepted + len(limited) == sent
    # One budget for the pod: the burst and what the rate refills while the requests go, far below
    # the 40 two workers with a budget each would let through at once.
    assert accepted <= 20 + 20 * elapsed + 2, (accepted, elapsed)
    assert limited
    assert int(limited[0].headers["retry-after"]) >= 1
    assert all(answer.status == 200 for answer in b_answers)
    with grpc.insecure_channel(target) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        codes = []
        for _ in range(40):
            try:
                stub.ModelInfer(_infer("sentiment"), metadata=(("x-api-key", "secret-a"),), timeout=10)
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as error:
                codes.append(error.code())
        assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes
    print(f"\nkey A: {accepted} of {sent} answered in {elapsed:.2f} s (rate 20/s, burst 20); B: {sent} of {sent}")  # noqa: T201


def _correct(server: Server, token: str, headers: dict[str, str], label: str = "negative") -> Reply:
    return request(server.url("/feedback"), body={"feedback_token": token, "label": label}, headers=headers)


def test_only_the_asker_corrects_its_answer_once(served: tuple[Server, str]) -> None:
    server, _ = served
    answer = request(server.url("/predict"), body=TEXT, headers=B)
    token = answer.json()["feedback_token"]
    assert answer.headers["x-feedback-token"] == token
    foreign = request(server.url("/predict"), body=TEXT, headers=C).json()["feedback_token"]
    assert _correct(server, foreign, B).status == 403
    payload, mac = token.split(".")
    assert _correct(server, f"{payload}.{mac[:-4]}AAAA", B).status == 422
    bare = request(server.url("/feedback"), body={"request_id": answer.headers["x-request-id"], "label": "negative"},
                   headers=B)  # fmt: skip
    assert bare.status == 422
    assert _correct(server, token, B).status == 202
    # Each on a new connection: the workers share who corrected what.
    assert [_correct(server, token, B, "positive").status for _ in range(6)] == [409] * 6
    batch = request(server.url("/predict/batch"), body={"texts": ["good", "bad"]}, headers=B).json()
    tokens = [result["feedback_token"] for result in batch["predictions"]]
    assert [_correct(server, each, B).status for each in tokens] == [202, 202]


def test_server_made_request_ids_share_no_counter(served: tuple[Server, str]) -> None:
    server, _ = served
    ids = [request(server.url("/predict"), body=TEXT, headers=B).headers["x-request-id"] for _ in range(3)]
    assert all(len(each) == 32 and int(each, 16) >= 0 for each in ids)
    assert len({each[:16] for each in ids}) == 3  # no shared prefix
    numbers = [int(each, 16) for each in ids]
    assert all(abs(second - first) > 2**64 for first, second in itertools.pairwise(numbers))


def test_a_bad_key_file_stops_the_server_at_start_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "keys.yaml"
    bad.write_text(f"keys:\n  - {{id: a, sha256: {sha('k')}, models: ['*'], scopes: [write]}}\n")
    env = {**os.environ, **production_env(tmp_path / "models", free_port(), tmp_path, API_KEYS_FILE=str(bad))}
    done = subprocess.run(production_command(), env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    (line,) = [line for line in done.stderr.splitlines() if "API_KEYS_FILE" in line]
    assert f"{bad}: key 1 (a): `scopes` must name at least one of predict, feedback, read, admin" in line
