"""Slow, silent and greedy clients against the production server, with real sockets on 127.0.0.1."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from tests.e2e.servers import (
    Server,
    free_port,
    metric_value,
    production_command,
    production_env,
    request,
    running_server,
    wait_until,
)

pytestmark = pytest.mark.e2e
METRICS_TOKEN = "slow-clients-metrics-token"

STALLED_UPLOAD = (
    b'POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"te'
)


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Two workers with short timeouts, so that each limit shows within a test's time."""
    tmp_path = tmp_path_factory.mktemp("slow")
    port = free_port()
    env = production_env(
        model_dir,
        port,
        tmp_path,
        HEADER_TIMEOUT_SECONDS="2",
        BODY_TIMEOUT_SECONDS="2",
        MAX_PENDING_REQUESTS="32",
        MAX_CONNECTIONS_PER_WORKER="300",
        API_KEYS="right-key",
        METRICS_TOKEN=METRICS_TOKEN,
    )
    with running_server(production_command(), port, env, tmp_path) as running:
        yield running


def connect(server: Server) -> socket.socket:
    port = int(server.base_url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def read_all(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(timeout)
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def authorised_predict(server: Server, timeout: float = 5.0) -> tuple[int, float]:
    body = b'{"text": "a lovely film"}'
    started = time.perf_counter()
    with connect(server) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nX-API-Key: right-key\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
        )
        reply = read_all(sock, timeout)
    return int(reply.split(b" ", 2)[1]), time.perf_counter() - started


@contextmanager
def stalled_uploads(server: Server, count: int, head: bytes) -> Iterator[list[socket.socket]]:
    with ExitStack() as stack:
        sockets = []
        for _ in range(count):
            sock = stack.enter_context(connect(server))
            sock.sendall(head)
            sockets.append(sock)
        yield sockets


def test_200_stalled_uploads_do_not_stop_a_normal_client(server: Server) -> None:
    """The reproduction: 130-200 connections that sent the headers of POST /predict with
    Content-Length: 100 and 4 body bytes made every normal prediction answer 503."""
    head = STALLED_UPLOAD.replace(b"Host: t\r\n", b"Host: t\r\nX-API-Key: right-key\r\n")
    with stalled_uploads(server, 200, head):
        time.sleep(0.5)
        for _ in range(5):
            status, seconds = authorised_predict(server)
            assert status == 200
            assert seconds < 2.0
        assert request(server.url("/health/ready"), timeout=2).status == 200


def test_a_stalled_body_gets_408_and_is_closed(server: Server) -> None:
    head = STALLED_UPLOAD.replace(b"Host: t\r\n", b"Host: t\r\nX-API-Key: right-key\r\n")
    with connect(server) as sock:
        sock.sendall(head)
        started = time.perf_counter()
        reply = read_all(sock)
    assert reply.startswith(b"HTTP/1.1 408 ")
    assert 1.5 < time.perf_counter() - started < 6


@pytest.mark.parametrize("sent", [b"", b"POST /predict HTTP/1.1\r\nHost: t\r\nX-Half: abc"])
def test_silent_and_half_header_connections_are_closed(server: Server, sent: bytes) -> None:
    with connect(server) as sock:
        sock.sendall(sent)
        started = time.perf_counter()
        reply = read_all(sock)
    assert time.perf_counter() - started < 6  # HEADER_TIMEOUT_SECONDS=2, not for ever
    assert reply.startswith(b"HTTP/1.1 408 ")


def test_the_key_is_checked_before_a_chunked_body_is_read(server: Server) -> None:
    """The chunked variant of the stall worked even with API_KEYS set: the body was read first."""
    with connect(server) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b'Transfer-Encoding: chunked\r\n\r\n4\r\n{"te\r\n'
        )
        started = time.perf_counter()
        sock.settimeout(5)
        reply = sock.recv(65536)
        elapsed = time.perf_counter() - started
    assert reply.startswith(b"HTTP/1.1 401 ")
    assert elapsed < 1.0


def test_huge_headers_get_431_without_growing_the_worker(server: Server) -> None:
    """The reproduction: 100 MiB of headers grew a worker's RSS from 173 to 278 MiB, then got 200."""
    sent = 0
    line = b"X-Filler: " + b"a" * 8000 + b"\r\n"
    with connect(server) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: t\r\n")
        try:
            while sent < 100 << 20:
                sock.sendall(line)
                sent += len(line)
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = read_all(sock, timeout=5)
    assert reply.startswith(b"HTTP/1.1 431 ")
    assert sent < 10 << 20  # the server stopped reading long before 100 MiB
    assert request(server.url("/health/live"), timeout=2).status == 200


def test_a_large_body_arriving_with_its_headers_is_not_mistaken_for_large_headers(server: Server) -> None:
    """A 256-text batch (about 25 KB) sent in one write was once answered 431."""
    texts = ", ".join(f'"review number {i}: ' + "a film that was quite good overall, " * 7 + '"' for i in range(256))
    body = ('{"texts": [' + texts + "]}").encode()
    assert len(body) > 4 * 16_384
    with connect(server) as sock:
        sock.sendall(
            b"POST /predict/batch HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nX-API-Key: right-key\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
        )
        reply = read_all(sock)
    assert reply.startswith(b"HTTP/1.1 200 "), reply[:200]


def test_a_head_over_the_cap_is_431_however_its_bytes_are_split(server: Server) -> None:
    """The head is measured over every chunk it came in: here its first half shares a chunk with the
    end of the previous request's body, the rest follows in a second chunk; 10 + 10 KB is over 16 KiB."""
    body = b'{"text": "a fine film"}'
    half = b"X-Filler: " + b"a" * 10_000 + b"\r\n"
    with connect(server) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nX-API-Key: right-key\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body[:5]
        )
        time.sleep(0.2)
        sock.sendall(body[5:] + b"GET /health/live HTTP/1.1\r\nHost: t\r\n" + half)
        time.sleep(0.2)
        sock.sendall(half.replace(b"X-Filler", b"X-Filler-2") + b"\r\n")
        reply = read_all(sock)
    assert reply.startswith(b"HTTP/1.1 200 "), reply[:200]
    assert b"HTTP/1.1 431 " in reply, reply[-300:]


def test_a_head_just_under_the_cap_is_served_even_without_spaces(server: Server) -> None:
    """Fields sent as `name:value` (no space) count as the parser sees them: 16,000 bytes of head pass."""
    fields = b"".join(b"X-F%d:" % i + b"b" * 150 + b"\r\n" for i in range(90))  # 90 fields, about 14 KB
    with connect(server) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost:t\r\nConnection:close\r\n" + fields + b"\r\n")
        assert read_all(sock).startswith(b"HTTP/1.1 200 ")


def test_too_many_header_fields_get_431(server: Server) -> None:
    fields = b"".join(b"X-F%d: 1\r\n" % i for i in range(150))
    with connect(server) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: t\r\n" + fields + b"\r\n")
        assert read_all(sock).startswith(b"HTTP/1.1 431 ")


def test_a_connection_flood_is_capped_per_worker(server: Server) -> None:
    with ExitStack() as stack:
        opened = [stack.enter_context(connect(server)) for _ in range(700)]  # 2 workers x 300 allowed
        # Connections past a worker's cap are closed by the server straight away.
        refused: set[int] = set()

        def count_refused() -> bool:
            refused.update(i for i, sock in enumerate(opened) if i not in refused and _closed_by_server(sock))
            return len(refused) >= 100

        wait_until(count_refused, 10, "connections refused")
        assert 100 <= len(refused) <= 700 - 2 * 300 + 20  # the rest stay open (a few may be timed out)
    # Once the flood is gone, the worker serves again.
    scraper = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    exposition = wait_until(
        lambda: request(server.url("/metrics"), timeout=2, headers=scraper).body.decode(), 10, "metrics"
    )
    assert metric_value(exposition, 'mlservice_connections_refused_total{reason="max_connections"}') >= 100
    status, _ = authorised_predict(server)
    assert status == 200


def _closed_by_server(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def test_a_client_trickling_its_body_after_an_early_401_is_cut_off(server: Server) -> None:
    """Answered 401 before its body ended, a client sending a byte now and then held the connection."""
    with connect(server) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        )
        sock.settimeout(5)
        assert sock.recv(65536).startswith(b"HTTP/1.1 401 ")
        started = time.perf_counter()
        closed = False
        while time.perf_counter() - started < 12 and not closed:
            try:
                sock.sendall(b" ")
                sock.settimeout(0.5)
                closed = sock.recv(65536) == b""
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
        assert closed
        assert time.perf_counter() - started < 6  # BODY_TIMEOUT_SECONDS=2 from the headers
