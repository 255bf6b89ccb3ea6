"""Start real server processes on 127.0.0.1 for end-to-end tests, bounded in time, stopped by pid."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Reply:
    """An HTTP response, read whole."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    url: str,
    *,
    body: Any = None,
    method: str | None = None,
    timeout: float = 10.0,
    headers: dict[str, str] | None = None,
) -> Reply:
    """One HTTP request with the standard library; any status comes back as a Reply."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {**({"Content-Type": "application/json"} if data is not None else {}), **(headers or {})}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return Reply(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())


@dataclass
class Server:
    """A running server process and where it listens."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_until(check: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll `check()` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except (OSError, urllib.error.URLError):
            result = None
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextmanager
def running_server(
    command: Sequence[str],
    port: int,
    env: Mapping[str, str],
    log_dir: Path,
    *,
    ready_path: str = "/health/live",
    timeout: float = 30.0,
) -> Iterator[Server]:
    """Run `command` (which must listen on `port`), wait for `ready_path` to answer 200, stop it by pid."""
    log_path = log_dir / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(command), cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    try:
        wait_until(
            lambda: (
                (process.poll() is None and request(server.url(ready_path), timeout=2).status == 200)
                or process.poll() is not None
            ),
            timeout,
            f"{ready_path} on port {port}",
        )
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{server.log()}")
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], grace: float = 15.0) -> int:
    """SIGTERM the process by its pid, then SIGKILL if it outlives the grace period; returns its status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    return process.returncode


def uvicorn_command(port: int, *extra: str) -> list[str]:
    """The seed's documented way to run the app."""
    return [sys.executable, "-m", "uvicorn", "src.api.main:app", "--host", "127.0.0.1", "--port", str(port), *extra]


def child_pids(pid: int, marker: bytes = b"spawn_main") -> set[int]:
    """The pids of a process's live children whose command line holds `marker` (the server's workers)."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z" and marker in cmdline:
            children.add(int(stat.parent.name))
    return children


def production_env(model_dir: Path, port: int, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a two-worker production server on 127.0.0.1 with its own metrics directory."""
    return {
        "MODEL_DIR": str(model_dir),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WORKERS": "2",
        "MODEL_POLL_SECONDS": "0",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "GRPC_PORT": str(free_port()),  # never the default 8081: servers of other tests may hold it
        **extra,
    }


def production_command() -> list[str]:
    """The production server (HOST, PORT, WORKERS come from the environment)."""
    return [sys.executable, "-m", "src.serve"]


def metric_value(exposition: str, sample: str) -> float:
    """The value of one sample line (name and labels exactly as exposed), 0 when absent."""
    for line in exposition.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
