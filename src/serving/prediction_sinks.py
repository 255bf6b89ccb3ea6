"""Where prediction records and feedback go: JSON Lines files, or an HTTP endpoint as CloudEvents."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Collection, Sequence
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
RETIRED = "retired"  # the worker name of the files dead workers' records are merged into
_ANSWER_BYTES = 65_536  # what is read of a sink's answer


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


_WORKER_FILE = re.compile(
    rf"^(?P<prefix>{PREDICTIONS_PREFIX}|{FEEDBACK_PREFIX})-(?P<host>.+)-(?P<pid>[0-9]+)\.jsonl(?:\.(?P<backup>[0-9]+))?$"
)
_COPY_CHUNK = 1 << 20


def retire_worker_logs(folder: Path, host: str, alive: Collection[int], *, max_bytes: int, backups: int) -> list[str]:
    """Merge the files of this host's workers that are no longer alive into `<prefix>-<host>-retired.jsonl`
    (rotated like any worker's file), then remove them; the names removed.

    Each worker writes its own files, named by its process id; without this, every worker that died
    (and every restart of a crash loop) left up to (PREDICTION_LOG_BACKUPS + 1) x PREDICTION_LOG_MAX_BYTES
    behind for ever. Corrections are kept (merged, oldest first), so `train --feedback` still finds them.
    """
    if not folder.is_dir():
        return []
    dead: dict[tuple[str, int], list[tuple[int, Path]]] = {}
    for entry in folder.iterdir():
        match = _WORKER_FILE.match(entry.name)
        if match is None or match["host"] != host or int(match["pid"]) in alive or not entry.is_file():
            continue
        if entry.is_symlink():
            continue
        backup = int(match["backup"] or 0)
        dead.setdefault((match["prefix"], int(match["pid"])), []).append((backup, entry))
    removed = []
    for (prefix, _), files in sorted(dead.items()):
        target = RotatingFile(folder / f"{prefix}-{host}-{RETIRED}.jsonl", max_bytes, backups)
        try:
            for _, path in sorted(files, key=lambda item: -item[0]):  # .2, .1, then the newest
                _append_lines(path, target, max_bytes)
                path.unlink(missing_ok=True)
                removed.append(path.name)
        finally:
            target.close()
    return removed


def _append_lines(source: Path, target: RotatingFile, max_bytes: int) -> None:
    """Copy a file's whole lines into `target` in pieces of at most `max_bytes` (a line cut at the end
    by a crash is dropped)."""
    pending = b""
    with source.open("rb") as handle:
        while chunk := handle.read(min(_COPY_CHUNK, max_bytes)):
            pending += chunk
            cut = pending.rfind(b"\n") + 1
            if cut:
                target.write(pending[:cut])
                pending = pending[cut:]
            if len(pending) > max_bytes:  # one line longer than a file may be: not a record of ours
                pending = b""


def live_pids(pids: Collection[int]) -> set[int]:
    """Those of `pids` that name a running process."""
    alive = set()
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        except PermissionError:
            pass
        alive.add(pid)
    return alive


class HttpSink:
    """POSTs each batch to `url` as CloudEvents (batched content mode); a non-2xx answer is a failure.

    `timeout` bounds the whole send, not each read: a sink that trickles its answer a byte at a time
    has its connection cut at the deadline."""

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
        """One POST for the batch, all of it within `timeout` seconds."""
        body = b"[" + b",".join(self.event(json.loads(line)) for _, line in records) + b"]"
        url = urllib.parse.urlsplit(self.url)
        kind = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        connection = kind(url.hostname or "", url.port, timeout=self.timeout)
        deadline = threading.Timer(self.timeout, _cut, (connection,))
        deadline.daemon = True
        started = time.monotonic()
        deadline.start()
        try:
            path = url.path or "/"
            connection.request(
                "POST", f"{path}?{url.query}" if url.query else path, body, {"Content-Type": BATCH_CONTENT_TYPE}
            )
            answer = connection.getresponse()
            answer.read(_ANSWER_BYTES)
        except OSError as error:
            if time.monotonic() - started >= self.timeout:
                raise TimeoutError(f"the sink took over {self.timeout:g} s") from None
            raise error from None
        except http.client.HTTPException as error:
            if time.monotonic() - started >= self.timeout:
                raise TimeoutError(f"the sink took over {self.timeout:g} s") from None
            raise OSError(f"the sink broke the HTTP exchange ({type(error).__name__})") from None
        finally:
            deadline.cancel()
            connection.close()
        if time.monotonic() - started >= self.timeout:  # cut mid-answer: what was read cannot be believed
            raise TimeoutError(f"the sink took over {self.timeout:g} s")
        if not 200 <= answer.status < 300:
            raise OSError(f"the sink answered HTTP {answer.status}")

    def close(self) -> None:
        """Nothing held open."""


def _cut(connection: http.client.HTTPConnection) -> None:
    """The send's deadline: shut its socket, which ends any read or write blocked on it."""
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
