"""One prediction through the whole app in process, with one model loaded and with two: no sockets,
no wrk, so the per-request cost of a second model shows without the noise of a loopback benchmark.

python -m bench.app_call      (uses MODEL_DIR's default model; trains a small second one in a temporary store)
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

CALLS = 20_000
ROUNDS = 5
TEXT = "take care of my cat offers a refreshingly different slice of asian cinema ."


def predict_request(body: bytes) -> tuple[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]]]:
    """One POST /predict in process: its ASGI scope (copied per call, with a fresh state) and a receive
    that gives `body` whole."""
    headers = [(b"host", b"x"), (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/predict", "raw_path": b"/predict", "query_string": b"", "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2),
    }  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return scope, receive


def per_call_us(model_dir: Path) -> tuple[list[str], float]:
    """The served models and the median over ROUNDS of the mean µs of one POST /predict through the app."""
    from src.api.main import create_app
    from src.config import Settings

    app = create_app(Settings(model_dir=model_dir, model_poll_seconds=0))
    app.state.models.load_all()
    scope, receive = predict_request(json.dumps({"text": TEXT}).encode())
    statuses: list[int] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def rounds() -> list[float]:
        samples = []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            for _ in range(CALLS):
                await app({**scope, "state": {}}, receive, send)
            samples.append((time.perf_counter() - started) / CALLS * 1e6)
        return samples

    samples = asyncio.run(rounds())
    assert set(statuses) == {200}, set(statuses)
    return sorted(app.state.models.models), statistics.median(samples)


def main() -> int:
    """Print the per-call cost with one model, then with two, each in a fresh process."""
    if len(sys.argv) > 1:  # the child: one store, one figure
        names, micros = per_call_us(Path(sys.argv[1]))
        print(json.dumps({"models": names, "us_per_call": micros}))
        return 0
    import subprocess

    from bench.run import two_model_store

    model_dir = Path(os.environ.get("MODEL_DIR", "models")).resolve()
    with tempfile.TemporaryDirectory() as folder:
        two = Path(folder) / "models"
        two_model_store(model_dir, two)
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": folder, "LOG_LEVEL": "warning"}
        for store in (model_dir, two, model_dir, two):
            out = subprocess.run(
                [sys.executable, "-m", "bench.app_call", str(store)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            result = json.loads(out.strip().splitlines()[-1])
            print(
                f"{' + '.join(result['models']):<20} {result['us_per_call']:.1f} µs per POST /predict through the app"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
