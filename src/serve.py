"""The production server: `python -m src.serve`.

One uvicorn worker process per available CPU (container-aware), each listening on its own socket
bound with SO_REUSEPORT, so the kernel spreads connections evenly across workers; with one shared
socket (`uvicorn --workers`), keep-alive connections were seen to pile onto one worker. This
supervisor restarts a worker that dies, keeps the Prometheus multiprocess directory clean, and on
SIGTERM or SIGINT stops the workers gracefully: they stop accepting, finish in-flight requests
within GRACEFUL_TIMEOUT_SECONDS, and exit.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

from prometheus_client import multiprocess

from src.api.logs import configure_logging
from src.config import Settings, get_settings

logger = logging.getLogger("src.serve")

_RESTART_DELAY_SECONDS = 0.5


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


def prepare_metrics_dir() -> Path:
    """An empty PROMETHEUS_MULTIPROC_DIR (made if unset), exported before any worker imports the client."""
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    path = Path(configured) if configured else Path(tempfile.mkdtemp(prefix="ml-service-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    for entry in path.iterdir():  # counts of a previous run must not leak into this one
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def check_port_free(host: str, port: int) -> None:
    """Raise OSError if anything listens on host:port.

    Binding without SO_REUSEPORT fails on a port in use; the workers' own SO_REUSEPORT sockets
    would instead share it silently with, say, another ml-service left running.
    """
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


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


def run_worker(settings: Settings) -> None:
    """One worker process: its own socket, one uvicorn server, until SIGTERM or the supervisor's end."""
    import uvicorn

    stop_with_parent(os.getppid())
    sock = bind_socket(settings.host, settings.port)
    config = uvicorn.Config(
        "src.api.main:app",
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=int(settings.graceful_timeout_seconds),
        timeout_keep_alive=settings.keep_alive_seconds,
        backlog=2048,
    )
    uvicorn.Server(config).run(sockets=[sock])


class Supervisor:
    """Starts the workers, replaces any that dies, and stops them all on a signal."""

    def __init__(self, settings: Settings, workers: int) -> None:
        self.settings = settings
        self.workers = workers
        self.context = multiprocessing.get_context("spawn")
        self.processes: list[BaseProcess] = []
        self.stopping = False

    def _start_one(self) -> BaseProcess:
        process = self.context.Process(target=run_worker, args=(self.settings,), daemon=False)
        process.start()
        logger.info("started worker %s", process.pid)
        return process

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _reap(self) -> None:
        for index, process in enumerate(self.processes):
            if process.is_alive() or self.stopping:
                continue
            logger.warning("worker %s exited with %s; starting a new one", process.pid, process.exitcode)
            if process.pid is not None:
                multiprocess.mark_process_dead(process.pid)  # type: ignore[no-untyped-call]
            time.sleep(_RESTART_DELAY_SECONDS)
            self.processes[index] = self._start_one()

    def run(self) -> int:
        """Supervise until SIGTERM or SIGINT; returns the exit status."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        check_port_free(self.settings.host, self.settings.port)
        self.processes = [self._start_one() for _ in range(self.workers)]
        logger.info("serving on http://%s:%d with %d workers", self.settings.host, self.settings.port, self.workers)
        while not self.stopping:
            time.sleep(0.2)
            self._reap()
        return self._stop()

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
    settings = get_settings()
    configure_logging(settings.log_level)
    prepare_metrics_dir()
    try:
        return Supervisor(settings, worker_count(settings)).run()
    except OSError as error:
        logger.error("cannot listen on %s:%d: %s", settings.host, settings.port, error.strerror)
        return 1


if __name__ == "__main__":
    sys.exit(main())
