"""The production server: `python -m src.serve`.

One uvicorn worker process per available CPU (container-aware), each listening on its own socket
bound with SO_REUSEPORT, so the kernel spreads connections evenly across workers (with one shared
socket, as `uvicorn --workers` has, keep-alive connections can pile onto one worker). This
supervisor restarts a worker that dies, keeps the Prometheus multiprocess directory clean, and on
SIGTERM or SIGINT stops the workers gracefully: they stop accepting, finish in-flight requests
within GRACEFUL_TIMEOUT_SECONDS, and exit.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import multiprocessing
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from types import FrameType

from pydantic import ValidationError

from src import exit_codes
from src.config import EmptyKeyFileError, Settings, get_settings, settings_problem
from src.logs import configure_logging
from src.serving.prediction_sinks import live_pids, retire_worker_logs
from src.serving.reload_broadcast import CONTROL_DIR_ENV, WORKERS_FILE, write_json_atomically
from src.tenants.feedback_tokens import make_server_secret
from src.tenants.keys import KeyFileError, build_key_ring

logger = logging.getLogger(__name__)

_RESTART_DELAY_SECONDS = 0.5
_MAX_RESTART_DELAY_SECONDS = 60.0
_QUICK_FAILURE_SECONDS = 10.0  # a worker that dies sooner than this after starting is crash-looping
_STARTUP_GRACE_SECONDS = 60.0  # model loading before the first heartbeat


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The CPU quota of this container in cores (cgroup v2 or v1), or None when there is none."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by the cgroup quota (rounded up)."""
    cpus = len(os.sched_getaffinity(0))
    limit = cgroup_cpu_limit()
    if limit is not None:
        cpus = min(cpus, max(1, math.ceil(limit)))
    return max(1, cpus)


def worker_count(settings: Settings) -> int:
    """WORKERS when set, else one per available CPU."""
    return settings.workers or available_cpus()


# What the server writes in PROMETHEUS_MULTIPROC_DIR: prometheus_client's files (one per metric type
# and process) and the drift windows (drift/<model>/<version>/<pid>.window). Nothing else is touched.
_METRICS_FILE = re.compile(r"^(?:counter|histogram|summary|gauge_[a-z]+)_(?P<pid>[0-9]+)\.db$")
_WINDOW_FILE = re.compile(r"^(?P<pid>[0-9]+)\.window$")
DRIFT_FOLDER = "drift"


def prepare_metrics_dir(*, starting: bool = False) -> tuple[Path, bool]:
    """PROMETHEUS_MULTIPROC_DIR (made if unset) without the files of processes that are gone, exported
    before any worker imports the client; and whether this process made it (and so removes it at exit).

    `starting`: this process has written no metric yet, so files under its own id are an earlier
    process's (a restarted container's supervisor often gets the same id, and its volume is kept)."""
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    path = Path(configured) if configured else Path(tempfile.mkdtemp(prefix="ml-service-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    remove_stale_metrics(path, own_are_stale=starting)  # counts of a previous run must not leak into this one
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path, not configured


def remove_stale_metrics(path: Path, *, own_are_stale: bool = False) -> list[Path]:
    """Remove the metric files and drift windows of processes no longer running (and, when
    `own_are_stale`, this one's): only files named as the server names them, never following a link,
    never another running server's. Returns what was removed."""
    removed: list[Path] = []

    def stale(match: re.Match[str] | None) -> bool:
        if match is None:
            return False
        pid = int(match["pid"])
        return (own_are_stale and pid == os.getpid()) or (pid != os.getpid() and not live_pids([pid]))

    for entry in path.iterdir():
        if _METRICS_FILE.match(entry.name) and stale(_METRICS_FILE.match(entry.name)) and _plain_file(entry):
            entry.unlink(missing_ok=True)
            removed.append(entry)
    drift = path / DRIFT_FOLDER
    if drift.is_dir() and not drift.is_symlink():
        for root, folders, files in os.walk(drift, topdown=False):  # os.walk never follows links by default
            for name in files:
                entry = Path(root) / name
                if stale(_WINDOW_FILE.match(name)) and _plain_file(entry):
                    entry.unlink(missing_ok=True)
                    removed.append(entry)
            for name in folders:
                with contextlib.suppress(OSError):  # removed only when empty
                    (Path(root) / name).rmdir()
    return removed


def _plain_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class PortBusyError(OSError):
    """A port the server needs is taken; the message names it (and which of the server's ports it is)."""


def check_port_free(host: str, port: int, what: str = "HTTP") -> None:
    """Raise PortBusyError, naming the port, if anything listens on host:port.

    Binding without SO_REUSEPORT fails on a port in use; the workers' own SO_REUSEPORT sockets
    would instead share it silently with, say, another ml-service left running.
    """
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise PortBusyError(error.errno, f"cannot listen on {host}:{port} ({what}): {error.strerror}") from None


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket that the other workers bind too (SO_REUSEPORT): the kernel spreads connections."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def stop_with_parent(parent: int, interval: float = 1.0) -> threading.Thread:
    """SIGTERM this process (a graceful stop) once `parent` is gone: a supervisor killed with SIGKILL
    cannot stop its workers, and they must not linger holding the port."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        logger.warning("supervisor %d is gone; stopping worker %d", parent, os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)

    watcher = threading.Thread(target=watch, name="parent-watch", daemon=True)
    watcher.start()
    return watcher


def run_worker(settings: Settings, heartbeat: Synchronized[float] | None = None) -> None:
    """One worker process: its own socket, one uvicorn server, until SIGTERM or the supervisor's end.

    Its event loop writes the time into `heartbeat` every second; a loop that stops doing so is hung.
    """
    import uvicorn

    from src.server.connection_guard import ConnectionLimits, GuardedHttpToolsProtocol

    stop_with_parent(os.getppid())
    # Until the app listens for it (src/serving/reload_broadcast.py), a reload signal must not kill.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    sock = bind_socket(settings.host, settings.port)

    async def beat() -> None:
        if heartbeat is not None:
            heartbeat.value = time.monotonic()

    config = uvicorn.Config(
        "src.api.main:create_worker_app",
        factory=True,
        loop="uvloop",
        # uvicorn builds each connection's protocol by calling this with its config and state.
        http=functools.partial(GuardedHttpToolsProtocol, limits=ConnectionLimits.from_settings(settings)),  # type: ignore[arg-type]
        callback_notify=beat,
        timeout_notify=1,
        lifespan="on",
        access_log=False,
        # The app reads neither the peer's address nor the scheme, so X-Forwarded-* is not rewritten into
        # them (uvicorn's default wraps every request in a middleware that copies the headers to do so);
        # and the answer does not name the server's software.
        proxy_headers=False,
        server_header=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=int(settings.graceful_timeout_seconds),
        timeout_keep_alive=settings.keep_alive_seconds,
        backlog=2048,
    )
    uvicorn.Server(config).run(sockets=[sock])


@dataclass
class Slot:
    """One worker position: its process, heartbeat, and how its recent starts went."""

    heartbeat: Synchronized[float]
    process: BaseProcess | None = None
    started_at: float = 0.0
    quick_failures: int = 0  # consecutive deaths soon after start: a crash loop
    restart_at: float | None = None


class Supervisor:
    """Starts the workers, replaces any that dies or hangs, and stops them all on a signal.

    A worker counts as hung when its event loop has not written its heartbeat for
    WORKER_TIMEOUT_SECONDS (a SIGSTOP, a request stuck in a C extension): it is killed and replaced,
    as gunicorn's arbiter does. A worker that dies soon after starting is restarted after a delay
    that doubles each time (0.5 s up to 60 s), with an error log and a metric, instead of spinning.
    """

    def __init__(self, settings: Settings, workers: int, target: Callable[..., None] | None = None) -> None:
        self.settings = settings
        self.workers = workers
        self.target = target or run_worker  # what each worker process runs: (settings, heartbeat)
        self.context = multiprocessing.get_context("spawn")
        self.slots: list[Slot] = []
        self.stopping = False
        self.reload_requested = False
        self.control_dir: Path | None = None  # shared with the workers: their pids and reload reports

    @property
    def processes(self) -> list[BaseProcess]:
        """The worker processes now running or last started."""
        return [slot.process for slot in self.slots if slot.process is not None]

    def _start(self, slot: Slot) -> None:
        # Until the worker's loop runs (model loading takes seconds), it counts as alive for a grace period.
        slot.heartbeat.value = time.monotonic() + _STARTUP_GRACE_SECONDS
        process = self.context.Process(target=self.target, args=(self.settings, slot.heartbeat), daemon=False)
        process.start()
        slot.process, slot.started_at, slot.restart_at = process, time.monotonic(), None
        logger.info("started worker %s", process.pid)
        self._write_workers()

    def _write_workers(self) -> None:
        if self.control_dir is not None:
            write_json_atomically(self.control_dir / WORKERS_FILE, [p.pid for p in self.processes if p.is_alive()])

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _on_reload(self, signum: int, frame: FrameType | None) -> None:
        self.reload_requested = True

    def _forward_reload(self) -> None:
        """SIGHUP to every live worker: each checks the store at once and reports what it did."""
        self.reload_requested = False
        for process in self.processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGHUP)
        logger.info("reload: asked %d workers to check the model store", len(self.processes))

    def _replace(self, slot: Slot, reason: str) -> None:
        process = slot.process
        assert process is not None
        # Imported here: prometheus_client must first see PROMETHEUS_MULTIPROC_DIR (prepare_metrics_dir).
        from prometheus_client import multiprocess

        from src import metrics

        if process.pid is not None:
            multiprocess.mark_process_dead(process.pid)  # type: ignore[no-untyped-call]
        quick = time.monotonic() - slot.started_at < _QUICK_FAILURE_SECONDS
        slot.quick_failures = slot.quick_failures + 1 if quick else 0
        if slot.quick_failures >= 2:
            reason = "crashed_at_startup"
        delay = min(_MAX_RESTART_DELAY_SECONDS, _RESTART_DELAY_SECONDS * 2 ** max(0, slot.quick_failures - 1))
        metrics.WORKER_RESTARTS.labels(reason=reason).inc()
        log = logger.error if reason != "exited" or slot.quick_failures else logger.warning
        log(
            "worker %s %s (exit code %s, %d quick failures in a row); starting a new one in %.1f s",
            process.pid,
            reason.replace("_", " "),
            process.exitcode,
            slot.quick_failures,
            delay,
        )
        slot.process = None
        slot.restart_at = time.monotonic() + delay
        self._write_workers()
        self._retire_logs()

    def _retire_logs(self) -> None:
        """Merge the prediction log files of workers that are gone (see retire_worker_logs)."""
        settings = self.settings
        if settings.prediction_log_dir is None:
            return
        alive = {p.pid for p in self.processes if p.pid is not None and p.is_alive()}
        try:
            retired = retire_worker_logs(
                settings.prediction_log_dir,
                socket.gethostname(),
                live_pids(alive),
                max_bytes=settings.prediction_log_max_bytes,
                backups=settings.prediction_log_backups,
            )
        except OSError as error:
            logger.warning("prediction log: cannot merge the files of stopped workers: %s", error)
            return
        if retired:
            logger.info("prediction log: merged %d files of stopped workers", len(retired))

    def _check(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            process = slot.process
            if process is None:
                if slot.restart_at is not None and now >= slot.restart_at:
                    self._start(slot)
                continue
            if not process.is_alive():
                self._replace(slot, "exited")
            elif now - slot.heartbeat.value > self.settings.worker_timeout_seconds:
                logger.error(
                    "worker %s has not answered for %.0f s (WORKER_TIMEOUT_SECONDS); killing it",
                    process.pid,
                    now - slot.heartbeat.value,
                )
                process.kill()
                process.join(5)
                self._replace(slot, "hung")

    def run(self) -> int:
        """Supervise until SIGTERM or SIGINT, reloading every worker on SIGHUP; returns the exit status."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGHUP, self._on_reload)
        check_port_free(self.settings.host, self.settings.port, "HTTP, PORT")
        if self.settings.grpc_port:
            check_port_free(self.settings.host, self.settings.grpc_port, "gRPC, GRPC_PORT")
        self._retire_logs()  # left by an earlier run on this host
        self.control_dir = Path(tempfile.mkdtemp(prefix="ml-service-control-"))
        os.environ[CONTROL_DIR_ENV] = str(self.control_dir)  # the spawned workers inherit it
        make_server_secret(self.control_dir)  # feedback tokens any worker can check (unless FEEDBACK_SECRET)
        try:
            self.slots = [Slot(self.context.Value("d", 0.0)) for _ in range(self.workers)]
            for slot in self.slots:
                self._start(slot)
            logger.info("serving on http://%s:%d with %d workers", self.settings.host, self.settings.port, self.workers)
            while not self.stopping:
                time.sleep(0.05 if self.reload_requested else 0.2)
                if self.reload_requested:
                    self._forward_reload()
                self._check()
            return self._stop()
        finally:
            os.environ.pop(CONTROL_DIR_ENV, None)
            shutil.rmtree(self.control_dir, ignore_errors=True)

    def _stop(self) -> int:
        logger.info("stopping %d workers", len(self.processes))
        for process in self.processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.graceful_timeout_seconds + 5
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                logger.warning("worker %s did not stop in time; killing it", process.pid)
                process.kill()
                process.join()
        return 0


def main() -> int:
    """Entry point of the production server."""
    try:  # a setting or key file the workers could not use stops the server here, in one line
        settings = get_settings()
    except (ValidationError, EmptyKeyFileError) as error:
        configure_logging("INFO")
        logger.error("refusing to start: %s", settings_problem(error))
        return exit_codes.REFUSED
    configure_logging(settings.log_level)
    try:
        build_key_ring(None, None, settings.api_keys_file)
    except KeyFileError as error:
        logger.error("API_KEYS_FILE: %s", error)
        return exit_codes.REFUSED
    metrics_dir, made_here = prepare_metrics_dir(starting=True)
    try:
        return Supervisor(settings, worker_count(settings)).run()
    except PortBusyError as error:
        logger.error("%s", error.strerror)
        return exit_codes.NOT_STARTED
    finally:
        if made_here:
            shutil.rmtree(metrics_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
