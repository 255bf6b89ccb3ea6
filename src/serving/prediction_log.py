"""Prediction records and feedback, written off the request path (settings PREDICTION_LOG_*).

One record per request that reached the data plane, answered or refused: its request id, model,
version, protocol, status, the id of the API key that sent it (null with keys off), latency, the
texts (as sent, hashed, or as a redaction hook returns them) and the answers or the error. A
request only makes its record's JSON line and appends it to a bounded queue (a deque: no lock, no
wake-up); a writer thread wakes every FLUSH_SECONDS and hands what is queued to the sink in
batches. The queue is bounded in records and in bytes (a record is as large as its request's texts,
up to MAX_BODY_BYTES), and so is each batch. When the queue is full
the record is dropped and counted (`mlservice_prediction_log_records_total{outcome="dropped"}`), so
a slow or stalled sink never slows a prediction. Feedback waits in a queue of its own within the
same bounds but is never dropped: a full queue refuses it (503) and the client sends it again.

Sinks (src/serving/prediction_sinks.py): JSON Lines files per worker, rotated by size, or an HTTP
endpoint that receives batches of CloudEvents.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from src import metrics
from src.config import Settings, default_of
from src.documents import encode_json
from src.serving.prediction_sinks import FileSink, HttpSink, Sink
from src.serving.predictor import Prediction

logger = logging.getLogger(__name__)

PREDICTION, FEEDBACK = "prediction", "feedback"
# Records handed to the sink at once (one file write, or one HTTP request), and their bytes: the writer
# holds one batch beside the queue, so its size counts in what a worker can hold for a stalled sink.
BATCH = 1000
BATCH_BYTES = 4_000_000
# How often the writer takes what is queued: waking per record would cost each request a thread switch.
FLUSH_SECONDS = 0.2

Redactor = Callable[[str], str]


def hashed(text: str) -> str:
    """The redaction `hash`: the text's sha256, so equal texts stay recognisable and none is readable."""
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def load_redactor(spec: str) -> Redactor | None:
    """PREDICTION_LOG_REDACT: none (empty), `hash`, or `module:function` (imported now, so a typo stops
    the server at start rather than logging texts it should not)."""
    if not spec:
        return None
    if spec == "hash":
        return hashed
    module, _, attribute = spec.partition(":")
    function = getattr(importlib.import_module(module), attribute)
    if not callable(function):
        raise TypeError(f"PREDICTION_LOG_REDACT {spec} is not a function")
    redact: Redactor = function
    return redact


@lru_cache(maxsize=4)
def _second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def _timestamp(stamp: float) -> str:
    """RFC 3339 in UTC with milliseconds: 2026-11-29T16:01:02.345Z (the second's text made once)."""
    second = int(stamp)
    return f"{_second(second)}.{int((stamp - second) * 1000):03d}Z"


def _output(prediction: Prediction) -> dict[str, Any]:
    if prediction.probabilities is not None:
        return {"label": prediction.label, "probabilities": prediction.probabilities}
    return {"label": prediction.label, "scores": prediction.scores}


def prediction_line(
    stamp: float,
    request_id: str,
    protocol: str,
    texts: Sequence[str],
    seconds: float,
    model: str | None,
    version: str | None,
    predictions: Sequence[Prediction],
    status: int,
    error: str | None,
    redact: Redactor | None,
    key: str | None = None,
) -> bytes:
    """One request's record as a JSON line."""
    document: dict[str, Any] = {
        "kind": PREDICTION,
        "time": _timestamp(stamp),
        "request_id": request_id,
        "protocol": protocol,
        "model": model,
        "version": version,
        "status": status,
        "key": key,
        "latency_ms": round(seconds * 1000, 3),
        "texts": texts if redact is None else [redact(text) for text in texts],
    }
    if redact is not None:
        document["redacted"] = True
    if error is not None:
        document["error"] = error
    else:
        document["outputs"] = [_output(p) for p in predictions]
    return encode_json(document)


class PredictionLog:
    """The queue, the writer thread and the sink of one worker."""

    def __init__(
        self,
        sink: Sink,
        *,
        sample: float = default_of("prediction_log_sample"),
        redact: Redactor | None = None,
        capacity: int = default_of("prediction_log_queue"),
        capacity_bytes: int = default_of("prediction_log_queue_bytes"),
    ):
        self.sink = sink
        self.sample = sample
        self.redact = redact
        self.capacity = capacity
        self.capacity_bytes = capacity_bytes
        # Bytes ever queued (counted by the event loop's thread, which alone appends) and ever taken (by
        # the writer, which alone takes): each has one writer, so their difference needs no lock.
        self.queued_total = 0
        self.taken_total = 0
        # JSON lines waiting for the writer: bytes only, which the garbage collector never scans, and no
        # reference to a request's objects. Corrections wait in a queue of their own.
        self.queue: deque[bytes] = deque()
        self.corrections: deque[bytes] = deque()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self._dropped = metrics.labelled(metrics.PREDICTION_LOG_RECORDS, PREDICTION, "dropped")

    @classmethod
    def from_settings(cls, settings: Settings) -> PredictionLog | None:
        """The log the settings ask for, or None when PREDICTION_LOG_DIR and PREDICTION_LOG_URL are unset."""
        host = socket.gethostname()
        sink: Sink
        if settings.prediction_log_dir is not None:
            sink = FileSink(
                settings.prediction_log_dir,
                f"{host}-{os.getpid()}",
                max_bytes=settings.prediction_log_max_bytes,
                backups=settings.prediction_log_backups,
            )
        elif settings.prediction_log_url is not None:
            sink = HttpSink(
                settings.prediction_log_url,
                source=f"/ml-service/{host}",
                timeout=settings.prediction_log_timeout_seconds,
            )
        else:
            return None
        return cls(
            sink,
            sample=settings.prediction_log_sample,
            redact=load_redactor(settings.prediction_log_redact),
            capacity=settings.prediction_log_queue,
            capacity_bytes=settings.prediction_log_queue_bytes,
        )

    def start(self) -> None:
        """Start the writer thread."""
        self.thread = threading.Thread(target=self._write_forever, name="prediction-log", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued (for at most `timeout` seconds) and stop the writer."""
        if self.thread is None:
            return
        self.stopping.set()
        self.thread.join(timeout)
        if self.thread.is_alive():
            # What the sink did not take in time is lost with the process: counted, never silent.
            waiting = {PREDICTION: len(self.queue), FEEDBACK: len(self.corrections)}
            for kind, count in waiting.items():
                if count:
                    metrics.labelled(metrics.PREDICTION_LOG_RECORDS, kind, "lost").inc(count)
            logger.warning(
                "prediction log: the sink did not take the last %d records in time; lost", sum(waiting.values())
            )
            return
        self.sink.close()

    def record(
        self,
        request_id: str,
        protocol: str,
        texts: Sequence[str],
        seconds: float,
        *,
        model: str | None,
        version: str | None,
        predictions: Sequence[Prediction] = (),
        status: int = 200,
        error: str | None = None,
        key: str | None = None,
    ) -> None:
        """Queue one request's record (sampled) as a JSON line; never waits. `key`: the API key's id."""
        if self.sample < 1.0 and random.random() >= self.sample:
            return
        if len(self.queue) + len(self.corrections) >= self.capacity:
            self._dropped.inc()
            return
        try:
            line = prediction_line(
                time.time(),
                request_id,
                protocol,
                texts,
                seconds,
                model,
                version,
                predictions,
                status,
                error,
                self.redact,
                key,
            )
        except Exception as error:  # a redaction hook that raises: the record is lost, never logged unredacted
            # Only the kind of error: its message and traceback may hold the text the hook was given.
            logger.error("prediction log: a record could not be made (%s); it is dropped", type(error).__name__)
            metrics.labelled(metrics.PREDICTION_LOG_RECORDS, PREDICTION, "failed").inc()
            return
        if self.queued_bytes() + len(line) > self.capacity_bytes:
            self._dropped.inc()
            return
        self.queued_total += len(line)
        self.queue.append(line)

    def feedback(self, document: dict[str, Any]) -> bool:
        """Queue a correction; False when the queue is full (the caller answers 503)."""
        line = encode_json({"kind": FEEDBACK, "time": _timestamp(time.time()), **document})
        if self._waiting() >= self.capacity or self.queued_bytes() + len(line) > self.capacity_bytes:
            return False
        self.queued_total += len(line)
        self.corrections.append(line)
        return True

    def queued_bytes(self) -> int:
        """Bytes of the records waiting for the writer (not counting the batch it is handing to the sink)."""
        return self.queued_total - self.taken_total

    def _write_forever(self) -> None:
        queues = ((PREDICTION, self.queue), (FEEDBACK, self.corrections))
        while True:
            stopping = self.stopping.wait(FLUSH_SECONDS)
            while self._waiting():
                batch: list[tuple[str, bytes]] = []
                size = 0
                for kind, pending in queues:
                    while pending and len(batch) < BATCH and (not batch or size + len(pending[0]) <= BATCH_BYTES):
                        line = pending.popleft()
                        batch.append((kind, line))
                        size += len(line)
                self.taken_total += size
                self._deliver(batch)
            if stopping:
                return

    def _waiting(self) -> int:
        return len(self.queue) + len(self.corrections)

    def _deliver(self, records: list[tuple[str, bytes]]) -> None:
        try:
            self.sink.write(records)
        except Exception as error:  # the sink is down or slow: records lost, counted, serving unaffected
            logger.warning("prediction log: %d records not delivered: %r", len(records), error)
            outcome = "failed"
        else:
            outcome = "written"
        for kind in (PREDICTION, FEEDBACK):
            count = sum(record_kind == kind for record_kind, _ in records)
            if count:
                metrics.labelled(metrics.PREDICTION_LOG_RECORDS, kind, outcome).inc(count)
