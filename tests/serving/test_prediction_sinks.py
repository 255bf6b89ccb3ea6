"""The HTTP sink speaks CloudEvents (batched JSON) to a real endpoint, and gives up on a silent one."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from src.serving.prediction_sinks import BATCH_CONTENT_TYPE, HttpSink

RECORD = {
    "kind": "prediction",
    "time": "2026-11-29T12:00:00.000Z",
    "request_id": "r1",
    "model": "sentiment",
    "texts": ["fine"],
}


def _record(document: dict[str, Any]) -> tuple[str, bytes]:
    return str(document["kind"]), json.dumps(document).encode()


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, Any]]]]:
    received: list[tuple[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers["Content-Type"], json.loads(body)))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/events", received
    server.shutdown()
    server.server_close()


def test_a_batch_arrives_as_cloudevents(receiver: tuple[str, list[tuple[str, Any]]]) -> None:
    url, received = receiver
    sink = HttpSink(url, source="/ml-service/pod-1", timeout=2)
    feedback = {"kind": "feedback", "time": RECORD["time"], "label": "x"}
    sink.write([_record(RECORD), _record({**RECORD, "request_id": "r2"}), _record(feedback)])
    ((content_type, events),) = received
    assert content_type == BATCH_CONTENT_TYPE
    assert [event["type"] for event in events] == ["io.github.ml-service.prediction"] * 2 + [
        "io.github.ml-service.feedback"
    ]
    assert {event["specversion"] for event in events} == {"1.0"}
    assert {event["source"] for event in events} == {"/ml-service/pod-1"}
    assert len({event["id"] for event in events}) == 3
    assert events[0]["subject"] == "sentiment"
    assert events[0]["data"] == RECORD
    assert events[0]["time"].startswith("2026-11-29T12:00:00")


def test_a_silent_endpoint_fails_within_the_timeout() -> None:
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        sink = HttpSink(f"http://127.0.0.1:{listener.getsockname()[1]}/", source="/x", timeout=0.5)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            sink.write([_record(RECORD)])
        assert time.monotonic() - started < 3
