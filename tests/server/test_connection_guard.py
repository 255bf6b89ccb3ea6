"""The connection guard's transport: a response's head goes out with its body, in one write."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any, cast

from src.server.connection_guard import _HeadWithBody
from tests.e2e.servers import free_port, production_command, production_env, running_server


class Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def _transport() -> tuple[_HeadWithBody, Recorder]:
    recorder = Recorder()
    return _HeadWithBody(cast(asyncio.Transport, recorder)), recorder


def test_a_head_is_held_until_its_body() -> None:
    transport, recorder = _transport()
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert recorder.writes == []
    transport.write(b"{}")
    assert recorder.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    transport.write(b"more")  # a later part of a body is not held
    assert recorder.writes[-1] == b"more"


def test_continue_is_never_held_and_close_sends_what_is_held() -> None:
    transport, recorder = _transport()
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert recorder.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    transport.write(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
    transport.close()
    assert recorder.writes[-1] == b"HTTP/1.1 408 Request Timeout\r\n\r\n"
    assert recorder.closed
    transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    transport.flush()  # a response without a body: sent when it is complete
    assert recorder.writes[-1] == b"HTTP/1.1 204 No Content\r\n\r\n"
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.abort()
    transport.flush()
    assert recorder.aborted
    assert recorder.writes[-1] == b"HTTP/1.1 204 No Content\r\n\r\n"  # an aborted connection sends nothing more


def test_the_production_server_answers_in_one_segment(model_dir: Path, tmp_path: Path) -> None:
    """Over a real socket: the whole small answer, head and body, is in the first read."""
    port = free_port()
    with running_server(production_command(), port, production_env(model_dir, port, tmp_path), tmp_path):
        body = b'{"text": "a fine film"}'
        head = (
            "POST /predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        )
        for _ in range(20):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
                client.sendall(head.encode() + body)
                first = client.recv(65536)
                assert first.startswith(b"HTTP/1.1 200 OK")
                length = int(first.split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
                assert len(first.split(b"\r\n\r\n", 1)[1]) == length  # the body came with its head
