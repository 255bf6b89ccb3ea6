"""The gRPC port against silent, idle and greedy clients, over real sockets: the worker keeps its file
descriptors and memory, and HTTP and gRPC keep answering."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import tritonclient.grpc as triton_grpc

from src.api.grpc.protocol import open_inference_pb2 as oip
from src.model.datasets import Dataset
from tests.e2e.servers import (
    Server,
    child_pids,
    free_port,
    production_command,
    production_env,
    request,
    running_server,
    wait_until,
)

pytestmark = pytest.mark.e2e

CONNECTIONS = 100  # MAX_CONNECTIONS_PER_WORKER
PENDING = 4  # MAX_PENDING_REQUESTS


@pytest.fixture(scope="module")
def served(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str, int]]:
    tmp_path = tmp_path_factory.mktemp("grpc-hostile")
    port = free_port()
    env = production_env(
        model_dir,
        port,
        tmp_path,
        WORKERS="1",
        MAX_CONNECTIONS_PER_WORKER=str(CONNECTIONS),
        HEADER_TIMEOUT_SECONDS="2",
        GRPC_IDLE_TIMEOUT_SECONDS="2",
        MAX_PENDING_REQUESTS=str(PENDING),
    )
    with running_server(production_command(), port, env, tmp_path, ready_path="/health/ready") as server:
        (worker,) = child_pids(server.process.pid)
        yield server, f"127.0.0.1:{env['GRPC_PORT']}", worker


def _descriptors(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def test_silent_connections_are_capped_and_closed(served: tuple[Server, str, int]) -> None:
    # Before the limits, 2,000 silent connections held 2,000 of the worker's descriptors for the
    # handshake's default 120 s (the HTTP port lives in the same process).
    server, target, worker = served
    host, port = target.rsplit(":", 1)
    before = _descriptors(worker)
    silent = [socket.create_connection((host, int(port)), timeout=5) for _ in range(3 * CONNECTIONS)]
    try:
        time.sleep(0.5)
        assert _descriptors(worker) <= before + CONNECTIONS + 5
        assert request(server.url("/predict"), body={"text": "fine"}).status == 200
        # HEADER_TIMEOUT_SECONDS (2 s) after connecting, a connection without its HTTP/2 preface is closed.
        wait_until(lambda: _descriptors(worker) <= before + 5, 10, "the silent connections closed")
        assert triton_grpc.InferenceServerClient(target).is_server_live(client_timeout=10)
    finally:
        for sock in silent:
            sock.close()


def test_an_idle_connection_is_closed_and_a_client_reconnects(served: tuple[Server, str, int]) -> None:
    # A connection left open after its calls is closed after GRPC_IDLE_TIMEOUT_SECONDS (2 s here): the
    # server's GOAWAY turns the client's channel from READY to IDLE, and its next call reconnects.
    _, target, _ = served
    states: list[grpc.ChannelConnectivity] = []
    with grpc.insecure_channel(target) as channel:
        live = channel.unary_unary(
            "/inference.GRPCInferenceService/ServerLive",
            request_serializer=oip.ServerLiveRequest.SerializeToString,
            response_deserializer=oip.ServerLiveResponse.FromString,
        )
        assert live(oip.ServerLiveRequest(), timeout=10).live
        channel.subscribe(states.append)
        wait_until(lambda: states[-1:] == [grpc.ChannelConnectivity.READY], 5, "the channel ready")
        started = time.monotonic()
        wait_until(lambda: states[-1] == grpc.ChannelConnectivity.IDLE, 10, "the server closing the idle connection")
        assert time.monotonic() - started < 8
        assert live(oip.ServerLiveRequest(), timeout=10).live


def test_calls_past_the_pending_limit_are_refused_at_once(served: tuple[Server, str, int], sample: Dataset) -> None:
    # Before the limit, every call of a burst waited in the worker, message and all (up to 4 MB each).
    server, target, _ = served
    corpus = " ".join(sample.texts[:2000])
    message = oip.ModelInferRequest(model_name="sentiment")
    tensor = message.inputs.add(name="text", datatype="BYTES", shape=[64])
    tensor.contents.bytes_contents.extend(corpus[i * 15_000 : (i + 1) * 15_000].encode() for i in range(64))
    codes: Counter[str] = Counter()
    counting = threading.Lock()
    start = threading.Barrier(48)
    with grpc.insecure_channel(target, options=[("grpc.max_send_message_length", 8_000_000)]) as channel:
        infer = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=oip.ModelInferRequest.SerializeToString,
            response_deserializer=oip.ModelInferResponse.FromString,
        )

        def call() -> None:
            start.wait()
            try:
                infer(message, timeout=60)
                code = "OK"
            except grpc.RpcError as error:
                code = error.code().name
            with counting:
                codes[code] += 1

        threads = [threading.Thread(target=call) for _ in range(48)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
    assert set(codes) == {"OK", "RESOURCE_EXHAUSTED"}, codes
    assert codes["OK"] >= 1
    assert request(server.url("/predict"), body={"text": "fine"}).status == 200
    print(f"\ngRPC burst of 48 calls of 1 MB, MAX_PENDING_REQUESTS {PENDING}: {dict(codes)}")  # noqa: T201
