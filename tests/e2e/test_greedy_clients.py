"""Clients that take more than their share: pipelining without reading, never reading, endless framing.

Each is reproduced with real sockets against the production server (one worker, so its memory and
its event loop are the ones under attack) and must stay bounded while others are served.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.servers import (
    Server,
    child_pids,
    free_port,
    metric_value,
    production_command,
    production_env,
    request,
    running_server,
    wait_until,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp_path = tmp_path_factory.mktemp("greedy")
    port = free_port()
    env = production_env(model_dir, port, tmp_path, WORKERS="1", WRITE_TIMEOUT_SECONDS="2", MAX_PIPELINED_REQUESTS="64")
    with running_server(production_command(), port, env, tmp_path, ready_path="/health/ready") as running:
        yield running


def _connect(server: Server, receive_buffer: int | None = None) -> socket.socket:
    sock = socket.socket()
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", int(server.base_url.rsplit(":", 1)[1])))
    return sock


def _worker_rss_mib(server: Server) -> float:
    (worker,) = child_pids(server.process.pid)
    for line in Path(f"/proc/{worker}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _refused(server: Server, reason: str) -> float:
    exposition = request(server.url("/metrics")).body.decode()
    return metric_value(exposition, f'mlservice_connections_refused_total{{reason="{reason}"}}')


def _send_what_it_takes(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the server closing the connection while we still send is the point
        sock.sendall(data)


def test_thousands_of_pipelined_requests_from_a_client_that_never_reads_are_cut_off(server: Server) -> None:
    before = _worker_rss_mib(server)
    dropped = _refused(server, "pipeline")
    one = b"GET /health/live HTTP/1.1\r\nHost: t\r\n\r\n"
    with _connect(server) as sock:
        _send_what_it_takes(sock, one * 20_000)
        wait_until(lambda: _refused(server, "pipeline") > dropped, 10, "the pipelining client to be cut off")
        started = time.perf_counter()
        assert request(server.url("/health/live"), timeout=5).status == 200
        assert time.perf_counter() - started < 1.0
    assert _worker_rss_mib(server) - before < 20


def test_a_client_that_never_reads_its_answers_is_disconnected_after_the_write_timeout(server: Server) -> None:
    timed_out = _refused(server, "write_timeout")
    words = " ".join(f"word{i} good bad" for i in range(40))
    body = json.dumps({"texts": [f"{words} {i}" for i in range(256)], "explain": True, "top_terms": 50}).encode()
    one = (
        b"POST /predict/batch HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    with _connect(server, receive_buffer=4096) as sock:
        # 40 answers of ~210 KB: more than the kernel's send buffer (4 MiB at most) and ours can hold.
        _send_what_it_takes(sock, one * 40)
        wait_until(lambda: _refused(server, "write_timeout") > timed_out, 60, "the write timeout")
        started = time.perf_counter()
        assert request(server.url("/health/live"), timeout=5).status == 200
        assert time.perf_counter() - started < 1.0


def test_a_megabyte_of_chunk_extension_is_a_400(server: Server) -> None:
    framing = _refused(server, "body_framing")
    head = b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    with _connect(server) as sock:
        _send_what_it_takes(sock, head + b"5;" + b"x" * 1_000_000)
        sock.settimeout(10)
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400 Bad Request")
    assert _refused(server, "body_framing") == framing + 1
    ok = request(server.url("/predict"), body={"text": "still fine"})
    assert ok.status == 200


def test_a_unicode_digit_as_the_header_length_is_a_400(server: Server) -> None:
    """b"\\xb2" reads as '²' (latin-1), which str.isdigit() accepts and int() refuses: once a 500."""
    body = json.dumps({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["a"]}]}).encode()
    with _connect(server) as sock:
        sock.sendall(
            b"POST /v2/models/sentiment/infer HTTP/1.1\r\nHost: t\r\nInference-Header-Content-Length: \xb2\r\n"
            b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400 "), reply[:200]
    assert b"Inference-Header-Content-Length" in reply
