"""Where prediction records and feedback go: JSON Lines files, or an HTTP endpoint as CloudEvents."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

# CloudEvents' HTTP binding, batched content mode: a JSON array of structured events.
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
EVENT_TYPE = "io.github.ml-service.{kind}"
# The files' names begin with these (what `train_script --feedback DIR` reads).
PREDICTIONS_PREFIX, FEEDBACK_PREFIX = "predictions", "feedback"


# A record: its kind (prediction or feedback) and its JSON document, one line.
Record = tuple[str, bytes]


class Sink(Protocol):
    """Takes a batch of records; raises when it cannot."""

    def write(self, records: Sequence[Record]) -> None: ...

    def close(self) -> None: ...


class RotatingFile:
    """An append-only file renamed to .1 (and .1 to .2, ...) once it reaches `max_bytes`."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path, self.max_bytes, self.backups = path, max_bytes, backups
        self.handle = path.open("ab")
        self.size = self.handle.tell()

    def write(self, data: bytes) -> None:
        """Append, rotating first if the file would pass its size."""
        if self.size and self.size + len(data) > self.max_bytes:
            self._rotate()
        self.handle.write(data)
        self.handle.flush()
        self.size += len(data)

    def _rotate(self) -> None:
        self.handle.close()
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        else:
            for index in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{index}")
                if older.exists():
                    older.replace(self.path.with_name(f"{self.path.name}.{index + 1}"))
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        self.handle = self.path.open("ab")
        self.size = 0

    def close(self) -> None:
        """Close the file."""
        self.handle.close()


class FileSink:
    """`predictions-<worker>.jsonl` and `feedback-<worker>.jsonl` in the folder, one JSON document per line.

    One file per worker: several processes never append to one file, and each rotates its own.
    """

    def __init__(self, folder: Path, worker: str, *, max_bytes: int, backups: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.files = {
            kind: RotatingFile(folder / f"{prefix}-{worker}.jsonl", max_bytes, backups)
            for kind, prefix in (("prediction", PREDICTIONS_PREFIX), ("feedback", FEEDBACK_PREFIX))
        }

    def write(self, records: Sequence[Record]) -> None:
        """Append each record to its kind's file."""
        lines: dict[str, list[bytes]] = {}
        for kind, line in records:
            lines.setdefault(kind, []).append(line)
        for kind, chunk in lines.items():
            self.files[kind].write(b"\n".join(chunk) + b"\n")

    def close(self) -> None:
        """Close every file."""
        for handle in self.files.values():
            handle.close()


class HttpSink:
    """POSTs each batch to `url` as CloudEvents (batched content mode); a non-2xx answer is a failure."""

    def __init__(self, url: str, *, source: str, timeout: float) -> None:
        self.url, self.source, self.timeout = url, source, timeout
        self.format = JSONFormat()

    def event(self, document: dict[str, Any]) -> bytes:
        """One record as a structured CloudEvent."""
        attributes = {
            "type": EVENT_TYPE.format(kind=document["kind"]),
            "source": self.source,
            "time": datetime.fromisoformat(document["time"].replace("Z", "+00:00")).astimezone(UTC),
            "datacontenttype": "application/json",
        }
        if document.get("model"):
            attributes["subject"] = document["model"]
        return self.format.write(CloudEvent(attributes, document))

    def write(self, records: Sequence[Record]) -> None:
        """One POST for the batch."""
        body = b"[" + b",".join(self.event(json.loads(line)) for _, line in records) + b"]"
        request = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": BATCH_CONTENT_TYPE}
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as answer:
            answer.read()

    def close(self) -> None:
        """Nothing held open."""
