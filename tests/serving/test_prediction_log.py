"""The prediction log: a record per request off the request path; full queues drop and count, never wait."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from src import metrics
from src.serving.prediction_log import BATCH_BYTES, PredictionLog, hashed, load_redactor, prediction_line
from src.serving.prediction_sinks import FileSink
from src.serving.predictor import Prediction

ANSWER = [Prediction("positive", {"negative": 0.1, "positive": 0.9}, 4, 0)]


class Stalled:
    """A sink that blocks until released, like an HTTP endpoint that stopped answering."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.written: list[tuple[str, bytes]] = []

    def write(self, records: Sequence[tuple[str, bytes]]) -> None:
        self.release.wait(10)
        self.written += records

    def close(self) -> None:
        pass


def _lines(folder: Path, prefix: str) -> list[dict[str, Any]]:
    return [json.loads(line) for path in folder.glob(f"{prefix}-*.jsonl") for line in path.read_text().splitlines()]


def _count(kind: str, outcome: str) -> float:
    return float(metrics.labelled(metrics.PREDICTION_LOG_RECORDS, kind, outcome)._value.get())


def test_records_and_feedback_are_written_as_json_lines(tmp_path: Path) -> None:
    log = PredictionLog(FileSink(tmp_path, "w1", max_bytes=10**6, backups=1))
    log.start()
    log.record("req-1", "json", ["what a film"], 0.0012, model="sentiment", version="v1", predictions=ANSWER)
    log.record("req-2", "v2", [" "], 0.0001, model="sentiment", version="v1", status=422, error="text must ...")
    assert log.feedback({"request_id": "req-1", "index": 0, "label": "negative", "model": "sentiment"})
    log.stop()
    answered, refused = _lines(tmp_path, "predictions")
    assert answered["request_id"] == "req-1"
    assert answered["texts"] == ["what a film"]
    assert answered["outputs"] == [{"label": "positive", "probabilities": {"negative": 0.1, "positive": 0.9}}]
    assert answered["status"] == 200
    assert answered["latency_ms"] == 1.2
    assert answered["time"].endswith("Z")
    assert refused["status"] == 422
    assert refused["error"] == "text must ..."
    assert refused["protocol"] == "v2"
    (correction,) = _lines(tmp_path, "feedback")
    assert correction["label"] == "negative"


def test_hash_redaction_never_writes_the_text(tmp_path: Path) -> None:
    log = PredictionLog(FileSink(tmp_path, "w1", max_bytes=10**6, backups=1), redact=load_redactor("hash"))
    log.start()
    log.record("req-1", "json", ["my card number is 4111"], 0.001, model="m", version="v", predictions=ANSWER)
    log.stop()
    (record,) = _lines(tmp_path, "predictions")
    assert record["texts"] == [hashed("my card number is 4111")]
    assert record["redacted"] is True
    assert "4111" not in (tmp_path / "predictions-w1.jsonl").read_text()


def _raises(text: str) -> str:
    raise ValueError("the hook failed")


def test_a_redaction_hook_that_raises_loses_the_record_rather_than_log_the_text(tmp_path: Path) -> None:
    failed = _count("prediction", "failed")
    log = PredictionLog(FileSink(tmp_path, "w1", max_bytes=10**6, backups=1), redact=_raises)
    log.start()
    log.record("req-1", "json", ["secret"], 0.001, model="m", version="v", predictions=ANSWER)
    log.stop()
    assert _lines(tmp_path, "predictions") == []
    assert _count("prediction", "failed") == failed + 1


def test_a_hook_is_imported_by_name_and_a_wrong_name_stops_the_start() -> None:
    assert load_redactor("tests.serving.test_prediction_log:_raises") is _raises
    assert load_redactor("") is None
    with pytest.raises(AttributeError):
        load_redactor("tests.serving.test_prediction_log:no_such_function")


def test_a_stalled_sink_drops_and_counts_records_and_never_blocks_a_request() -> None:
    sink = Stalled()
    log = PredictionLog(sink, capacity=10)
    log.start()
    dropped = _count("prediction", "dropped")
    started = time.perf_counter()
    for i in range(1000):
        log.record(f"r{i}", "json", ["text"], 0.001, model="m", version="v", predictions=ANSWER)
    took = time.perf_counter() - started
    assert took < 0.5  # 1,000 records with the sink stuck: no call waited for it
    assert _count("prediction", "dropped") - dropped >= 1000 - 10 - 1  # the queue, and the one in the sink
    assert not log.feedback({"request_id": "r1", "index": 0, "label": "x", "model": "m"})  # refused, not dropped
    sink.release.set()
    log.stop()
    assert 1 <= len(sink.written) <= 11


def test_the_queue_is_bounded_in_bytes_as_well_as_in_records() -> None:
    # A record holds its request's texts: 10,000 records of a 2 MB request would be 20 GB for a stalled sink.
    sink = Stalled()
    log = PredictionLog(sink, capacity=10_000, capacity_bytes=1_000_000)
    log.start()
    dropped = _count("prediction", "dropped")
    big = ["word " * 60_000]  # a 300 KB text: three records fit
    for i in range(20):
        log.record(f"r{i}", "json", big, 0.001, model="m", version="v", predictions=ANSWER)
        assert log.queued_bytes() <= 1_000_000
    # What the queue holds, and at most one batch the writer took from it before the sink stalled.
    assert _count("prediction", "dropped") - dropped >= 20 - 3 - 3
    small = {"request_id": "r1", "index": 0, "label": "x", "model": "m"}
    assert log.feedback(small) == (log.queued_bytes() + 200 <= 1_000_000)
    sink.release.set()
    log.stop()
    assert log.queued_bytes() == 0


class Sizes:
    """A sink that keeps the size of each write."""

    def __init__(self) -> None:
        self.writes: list[list[int]] = []

    def write(self, records: Sequence[tuple[str, bytes]]) -> None:
        self.writes.append([len(line) for _, line in records])

    def close(self) -> None:
        pass


def test_batches_are_bounded_in_bytes_and_every_record_is_written() -> None:
    sink = Sizes()
    log = PredictionLog(sink, capacity_bytes=100_000_000)
    big = ["word " * 300_000]  # 1.5 MB records: two to a batch of at most BATCH_BYTES
    for i in range(9):
        log.record(f"r{i}", "json", big, 0.001, model="m", version="v", predictions=ANSWER)
    log.record("huge", "json", ["word " * 1_000_000], 0.001, model="m", version="v", predictions=ANSWER)
    log.start()
    log.stop()
    assert sum(len(write) for write in sink.writes) == 10
    assert all(sum(write) <= BATCH_BYTES or len(write) == 1 for write in sink.writes)
    assert [len(write) for write in sink.writes] == [2, 2, 2, 2, 1, 1]  # the 5 MB record goes alone


def test_sampling_keeps_about_that_share(tmp_path: Path) -> None:
    log = PredictionLog(FileSink(tmp_path, "w1", max_bytes=10**7, backups=1), sample=0.25)
    log.start()
    for i in range(2000):
        log.record(f"r{i}", "json", ["text"], 0.001, model="m", version="v", predictions=ANSWER)
    log.stop()
    assert 400 < len(_lines(tmp_path, "predictions")) < 600


def test_files_rotate_by_size_and_keep_the_backups(tmp_path: Path) -> None:
    sink = FileSink(tmp_path, "w1", max_bytes=10_000, backups=2)
    for i in range(60):
        line = json.dumps({"kind": "prediction", "request_id": f"r{i}", "texts": ["x" * 500]})
        sink.write([("prediction", line.encode())])
    sink.close()
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["feedback-w1.jsonl", "predictions-w1.jsonl", "predictions-w1.jsonl.1", "predictions-w1.jsonl.2"]
    assert all(path.stat().st_size <= 10_000 for path in tmp_path.iterdir())
    newest = [json.loads(line)["request_id"] for line in (tmp_path / "predictions-w1.jsonl").read_text().splitlines()]
    assert newest[-1] == "r59"


def test_a_hand_written_line_is_the_json_of_the_record() -> None:
    answers = [
        Prediction("positive", {"negative": 0.1, "positive": 0.9}, 4, 0),
        Prediction("spam", None, 3, 1, scores={"spam": -1.5e-7}),
    ]
    texts = ['quote " and \\ and \n newline', "café 🎬 \ud800 lone surrogate"]
    line = prediction_line(1796000000.0625, "r-1", "grpc", texts, 0.0012345, "m", None, answers, 200, None, None)
    assert json.loads(line) == {
        "kind": "prediction",
        "time": "2026-11-30T00:53:20.062Z",
        "request_id": "r-1",
        "protocol": "grpc",
        "model": "m",
        "version": None,
        "status": 200,
        "key": None,
        "latency_ms": 1.234,  # round(1.2345, 3) in binary floating point
        "texts": texts,
        "outputs": [
            {"label": "positive", "probabilities": {"negative": 0.1, "positive": 0.9}},
            {"label": "spam", "scores": {"spam": -1.5e-7}},
        ],
    }
    refused = json.loads(prediction_line(0.0, "r", "json", ["x"], 0.0, None, None, [], 404, 'no "m"', hashed))
    assert refused["error"] == 'no "m"'
    assert refused["texts"] == [hashed("x")]
    assert refused["redacted"] is True
    assert "outputs" not in refused


def _raises_with_the_text(text: str) -> str:
    raise ValueError(f"cannot redact {text!r}")


def test_a_hook_that_raises_with_the_text_never_puts_it_in_the_server_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Finding 10 of #27: a hook that raised put the text in the server log (its message, its traceback),
    though the docs promise a record is never logged unredacted."""
    log = PredictionLog(FileSink(tmp_path, "w1", max_bytes=10**6, backups=1), redact=_raises_with_the_text)
    log.start()
    with caplog.at_level("DEBUG"):
        log.record("req-1", "json", ["my card is 4111-1111"], 0.001, model="m", version="v", predictions=ANSWER)
    log.stop()
    assert "4111" not in caplog.text
    assert "ValueError" in caplog.text  # what went wrong is still said
    assert all(record.exc_info is None for record in caplog.records)


def test_what_the_sink_has_not_taken_at_shutdown_is_counted_lost() -> None:
    """Finding 15 of #27: records still queued when a worker stopped were lost without a count."""
    sink = Stalled()
    log = PredictionLog(sink, capacity=100)
    log.start()
    lost = _count("prediction", "lost")
    for i in range(30):
        log.record(f"r{i}", "json", ["text"], 0.001, model="m", version="v", predictions=ANSWER)
    time.sleep(0.5)  # the writer takes a batch and waits on the stalled sink
    log.record("late", "json", ["text"], 0.001, model="m", version="v", predictions=ANSWER)
    log.stop(timeout=0.2)
    assert _count("prediction", "lost") - lost >= 1
    sink.release.set()
