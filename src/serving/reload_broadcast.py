"""One reload for every worker of a server: `POST /model/reload` and SIGHUP reach them all.

The production supervisor (src/server/supervisor.py) gives its workers a control folder (in the
CONTROL_DIR_ENV variable), keeps the live workers' pids in `workers.json` there, and forwards a
SIGHUP to every worker. A worker that gets SIGHUP checks the store at once (new models, changed
CURRENTs, rejected versions retried) and writes what it did to `reports/<pid>.json`, with the reload
requests it had seen when it began. `POST /model/reload` writes a request into `requests/`, sends
SIGHUP to the supervisor and waits until every live worker has reported that request, or until
RELOAD_WAIT_SECONDS pass; the answer says what each worker did and which did not answer.
Outside the supervisor (one uvicorn process, a test client) a reload is this process's alone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from src.documents import DocumentError, read_file, read_json

if TYPE_CHECKING:  # the supervisor imports this module before prometheus_client may be imported
    from src.serving.served_models import ServedModels

logger = logging.getLogger(__name__)

CONTROL_DIR_ENV = "ML_SERVICE_CONTROL_DIR"
WORKERS_FILE = "workers.json"
RELOAD_WAIT_SECONDS = 30.0
_POLL_SECONDS = 0.05


def write_json_atomically(path: Path, content: object) -> None:
    """Write JSON to a temporary name, then rename it over `path`: a reader sees the old or the new file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(content))
    temporary.replace(path)


_MAX_ANSWER_BYTES = 1 << 20  # a worker's answer: a line per model


def _read_json(path: Path) -> Any:
    try:
        return read_json(read_file(path, _MAX_ANSWER_BYTES, str(path)), str(path), max_bytes=_MAX_ANSWER_BYTES)
    except DocumentError:  # a worker's answer half written, or not one: as if it had not answered
        return None


class ReloadBroadcast:
    """This worker's part in server-wide reloads; without a control folder, reloads stay in this process."""

    def __init__(self, models: ServedModels, control_dir: Path | None) -> None:
        self.models = models
        self.control_dir = control_dir
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task[None]] = set()

    @classmethod
    def from_environment(cls, models: ServedModels) -> ReloadBroadcast:
        """The broadcast for this process: server-wide when the supervisor gave it a control folder."""
        folder = os.environ.get(CONTROL_DIR_ENV)
        return cls(models, Path(folder) if folder else None)

    def listen(self) -> None:
        """Reload on SIGHUP (call from the event loop's thread, under the supervisor only)."""
        if self.control_dir is None:
            return
        for folder in ("requests", "reports"):
            (self.control_dir / folder).mkdir(exist_ok=True)
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._on_signal)

    def _on_signal(self) -> None:
        task = asyncio.create_task(self._reload_and_report())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def reload_here(self) -> dict[str, dict[str, Any]]:
        """Check the store now in this process; per model, whether a new version serves and which one."""
        async with self._lock:
            reloaded = await self.models.reload_if_changed(retry_rejected=True)
        return {
            name: {
                "reloaded": reloaded.get(name, False),
                "model_version": state.predictor.version if state.predictor else None,
                "rejected_version": state.rejected_version,
            }
            for name, state in sorted(self.models.models.items())
        }

    async def _reload_and_report(self) -> None:
        assert self.control_dir is not None
        seen = sorted(entry.name for entry in (self.control_dir / "requests").iterdir())
        try:
            report = await self.reload_here()
        except Exception:  # a signal handler's task must not die silently
            logger.exception("reload on SIGHUP failed")
            return
        path = self.control_dir / "reports" / f"{os.getpid()}.json"
        write_json_atomically(path, {"pid": os.getpid(), "seen": seen, "models": report})
        logger.info("reloaded on SIGHUP: %s", {name: r["model_version"] for name, r in report.items()})

    async def reload_everywhere(self, wait: float = RELOAD_WAIT_SECONDS) -> dict[str, Any]:
        """Reload in every worker of the server and collect what each did (this process only, alone)."""
        if self.control_dir is None:
            return {"workers": {str(os.getpid()): await self.reload_here()}, "missing": []}
        request_id = f"{time.time_ns()}-{secrets.token_hex(4)}"
        request = self.control_dir / "requests" / request_id
        request.touch()
        try:
            os.kill(os.getppid(), signal.SIGHUP)
            return await self._collect(request_id, time.monotonic() + wait)
        finally:
            request.unlink(missing_ok=True)

    async def _collect(self, request_id: str, deadline: float) -> dict[str, Any]:
        assert self.control_dir is not None
        while True:
            workers = [str(pid) for pid in _read_json(self.control_dir / WORKERS_FILE) or []]
            reports = {pid: _read_json(self.control_dir / "reports" / f"{pid}.json") for pid in workers}
            done = {pid: r["models"] for pid, r in reports.items() if r and request_id in r.get("seen", ())}
            if len(done) == len(workers) or time.monotonic() >= deadline:
                return {"workers": done, "missing": sorted(set(workers) - done.keys())}
            await asyncio.sleep(_POLL_SECONDS)
