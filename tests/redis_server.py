"""A real redis-server for the tests: on 127.0.0.1, a port of its own, no files, stopped by its pid."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.servers import free_port


@dataclass
class RedisServer:
    """A running redis-server; `pause()`/`resume()` stop and continue it (kill -STOP / -CONT)."""

    process: subprocess.Popen[bytes]
    port: int
    folder: Path
    password: str | None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def command(self, *args: str) -> str:
        """One command with redis-cli; its output."""
        auth = ["-a", self.password, "--no-auth-warning"] if self.password else []
        done = subprocess.run(
            ["redis-cli", "-p", str(self.port), *auth, *args], capture_output=True, text=True, timeout=10, check=True
        )
        return done.stdout.strip()

    def stop(self) -> None:
        self.resume()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_redis(folder: Path, port: int | None = None, password: str | None = None) -> RedisServer:
    """Start redis-server on 127.0.0.1 (`port`, or a free one) and wait until it answers PING."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: `make system-deps` installs it")
    port = port or free_port()
    folder.mkdir(parents=True, exist_ok=True)
    args = ["--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(folder)]
    if password:
        args += ["--requirepass", password]
    with (folder / f"redis-{port}.log").open("wb") as log:
        process = subprocess.Popen(["redis-server", *args], stdout=log, stderr=subprocess.STDOUT)
    server = RedisServer(process, port, folder, password)
    deadline = time.monotonic() + 10
    while True:
        try:
            if server.command("PING") == "PONG":
                return server
        except subprocess.CalledProcessError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise AssertionError(f"redis-server did not start: {(folder / f'redis-{port}.log').read_text()}")
        time.sleep(0.05)


@contextmanager
def running_redis(folder: Path, port: int | None = None, password: str | None = None) -> Iterator[RedisServer]:
    """A redis-server for the block, stopped by its pid after it."""
    server = start_redis(folder, port, password)
    try:
        yield server
    finally:
        server.stop()
