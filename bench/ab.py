"""Server CPU per request of this checkout against another one (say, a `git worktree` of main), in turns.

    git worktree add /tmp/base main
    python -m bench.ab /tmp/base --model-dir models --rounds 3

Each round starts one worker of each checkout's production server, and the bare ASGI limit
(bench/bare_server.py), pinned to CPU 0 with wrk pinned to CPU 1, and measures `/predict` and V2
infer with a short text. The checkouts alternate within each round, so drift of this shared machine
touches both alike; the report gives each round and the medians, as shares of the bare limit.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench.inprocess import bench_texts
from bench.run import ROOT, Measurement, free_port, measure, serve
from src.model.datasets import load_bundled

CONNECTIONS = 16
CPU_SERVER, CPU_LOAD = "0", "1"


def _server_command(checkout: Path) -> list[str]:
    return ["bash", "-c", f"cd {checkout} && exec taskset -c {CPU_SERVER} {sys.executable} -m src.serve"]


def _measure_checkout(
    checkout: Path, model_dir: Path, bodies: dict[str, str], args: argparse.Namespace
) -> dict[str, float]:
    port = free_port()
    env = {"MODEL_DIR": str(model_dir), "MODEL_POLL_SECONDS": "0", "LOG_LEVEL": "warning", "HOST": "127.0.0.1",
           "PORT": str(port), "WORKERS": "1", "GRPC_PORT": "0", "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="bench-ab-")}  # fmt: skip
    figures = {}
    with serve(str(checkout), _server_command(checkout), env, port, "/health/ready") as server:
        for path, body in bodies.items():
            result: Measurement = measure(server, path, body, CONNECTIONS, args.seconds, args.repeats)
            figures[path] = result.cpu_us_per_request
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("other", type=Path, help="the other checkout")
    parser.add_argument("--model-dir", type=Path, default=Path(os.environ.get("MODEL_DIR", "models")))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ["WRK_CPU"] = CPU_LOAD
    model_dir = args.model_dir.resolve()
    text = bench_texts(load_bundled()).short[0]
    bodies = {
        "/predict": json.dumps({"text": text}),
        "/v2/models/sentiment/infer": json.dumps(
            {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [text]}]}
        ),
    }
    checkouts = {"this": ROOT, "other": args.other.resolve()}
    rows: list[dict[str, float]] = []
    for round_number in range(args.rounds):
        row: dict[str, float] = {}
        order = list(checkouts.items()) if round_number % 2 == 0 else list(reversed(checkouts.items()))
        for name, checkout in order:
            for path, cpu in _measure_checkout(checkout, model_dir, bodies, args).items():
                row[f"{name} {path}"] = cpu
        port = free_port()
        bare = ["taskset", "-c", CPU_SERVER, sys.executable, "-m", "uvicorn", "bench.bare_server:app", "--host",
                "127.0.0.1", "--port", str(port), "--http", "httptools", "--no-access-log", "--log-level", "warning"]  # fmt: skip
        with serve("bare", bare, {"MODEL_DIR": str(model_dir)}, port, "/") as server:
            row["bare"] = measure(
                server, "/predict", bodies["/predict"], CONNECTIONS, args.seconds, args.repeats
            ).cpu_us_per_request
        rows.append(row)
        print(f"round {round_number + 1}: " + ", ".join(f"{k} {v:.0f} µs" for k, v in row.items()), flush=True)
    print(
        "\n| configuration | CPU µs/request, rounds | median | share of the bare limit (median) |\n|---|---|---:|---:|"
    )
    bare_median = statistics.median(row["bare"] for row in rows)
    for key in rows[0]:
        values = [row[key] for row in rows]
        median = statistics.median(values)
        share = f"{bare_median / median:.0%}"
        print(f"| {key} | {' / '.join(f'{v:.0f}' for v in values)} | {median:.0f} | {share} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
