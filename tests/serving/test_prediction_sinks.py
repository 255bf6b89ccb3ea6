"""The HTTP sink speaks CloudEvents (batched JSON) to a real endpoint and gives up on a silent or trickling
one within its deadline; the files of workers that are gone are merged and removed."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from src.serving.prediction_sinks import BATCH_CONTENT_TYPE, HttpSink, retire_worker_logs

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


def test_a_trickling_endpoint_is_cut_at_the_total_deadline() -> None:
    """Finding 15 of #27: PREDICTION_LOG_TIMEOUT_SECONDS bounded each read, not the send; a sink that
    answered a byte at a time held one send for 56 s."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        stop = threading.Event()

        def trickle() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.settimeout(0.5)
                with contextlib.suppress(OSError):
                    connection.recv(65536)
                for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000:
                    if stop.is_set():
                        return
                    with contextlib.suppress(OSError):
                        connection.sendall(bytes([byte]))
                    time.sleep(0.05)  # each read gets a byte well within the timeout

        thread = threading.Thread(target=trickle, daemon=True)
        thread.start()
        sink = HttpSink(f"http://127.0.0.1:{listener.getsockname()[1]}/", source="/x", timeout=1.0)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            sink.write([_record(RECORD)])
        assert time.monotonic() - started < 2.5
        stop.set()
        thread.join(5)


def _worker_files(folder: Path, host: str, pid: int, lines: int) -> None:
    for prefix, backup in (("predictions", ".1"), ("predictions", ""), ("feedback", "")):
        path = folder / f"{prefix}-{host}-{pid}.jsonl{backup}"
        path.write_text("".join(f'{{"pid": {pid}, "n": {n}, "file": "{path.name}"}}\n' for n in range(lines)))


def test_the_files_of_workers_gone_are_merged_and_removed(tmp_path: Path) -> None:
    """Finding 15 of #27: files of dead workers piled up (up to 1.2 GB each at the defaults, times the
    restarts of a crash loop). The supervisor merges them into one rotated set per kind."""
    alive, gone = os.getpid(), [dead_pid(), dead_pid()]
    for pid in [alive, *gone]:
        _worker_files(tmp_path, "h1", pid, 50)
    _worker_files(tmp_path, "other-host", gone[0], 5)  # another pod's on a shared volume: not judged here
    (tmp_path / "notes.jsonl").write_text("mine\n")
    removed = retire_worker_logs(tmp_path, "h1", {alive}, max_bytes=10**6, backups=2)
    assert len(removed) == 6
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == sorted(
        [
            f"feedback-h1-{alive}.jsonl",
            f"predictions-h1-{alive}.jsonl",
            f"predictions-h1-{alive}.jsonl.1",
            "feedback-h1-retired.jsonl",
            "predictions-h1-retired.jsonl",
            *(
                f"{p}-other-host-{gone[0]}.jsonl{b}"
                for p, b in (("predictions", ".1"), ("predictions", ""), ("feedback", ""))
            ),
            "notes.jsonl",
        ]
    )
    merged = [json.loads(line) for line in (tmp_path / "predictions-h1-retired.jsonl").read_text().splitlines()]
    assert len(merged) == 200
    first = [record for record in merged if record["pid"] == gone[0]]
    assert [record["file"].endswith(".1") for record in first[:50]] == [True] * 50  # the older file first
    feedback = (tmp_path / "feedback-h1-retired.jsonl").read_text().splitlines()
    assert len(feedback) == 100  # corrections are kept for `train --feedback`


def test_merged_files_stay_within_their_rotation(tmp_path: Path) -> None:
    pids = [dead_pid() for _ in range(6)]
    for pid in pids:
        _worker_files(tmp_path, "h1", pid, 2000)
    retire_worker_logs(tmp_path, "h1", set(), max_bytes=50_000, backups=2)
    kept = [path for path in tmp_path.iterdir() if path.name.startswith("predictions-h1-retired")]
    assert len(kept) == 3
    assert sum(path.stat().st_size for path in kept) <= 3 * 50_000


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid
