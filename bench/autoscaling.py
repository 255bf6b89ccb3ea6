"""The figures to autoscale on: how many requests in flight one worker holds before its p99 leaves a
latency objective, and how long a server takes from start to ready (the cold start a scale-up, or a
scale from zero, waits for).

One worker pinned to CPU 0, wrk on CPU 1, /predict with a short text at each concurrency in turn;
then the production server (WORKERS=2, the default model) started COLD_STARTS times, timed to
/health/ready. Writes bench/autoscaling.md; reports, never fails.

python -m bench.autoscaling [--model-dir models] [--objective-ms 25] [--seconds 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.run import ROOT, body_of, free_port, measure, serve

CPU_SERVER, CPU_LOAD = "0", "1"
TEXT = "The acting was wooden and the plot made no sense at all."
CONCURRENCY = (2, 4, 8, 16, 32, 64, 128)  # wrk needs a connection per thread (2)
COLD_STARTS = 5


def main() -> int:
    """Measure, print and write the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path(os.environ.get("MODEL_DIR", "models")))
    parser.add_argument("--objective-ms", type=float, default=25.0, help="the p99 latency objective")
    parser.add_argument("--seconds", type=int, default=4)
    args = parser.parse_args()
    os.environ["WRK_CPU"] = CPU_LOAD
    base = {"MODEL_DIR": str(args.model_dir), "MODEL_POLL_SECONDS": "0", "LOG_LEVEL": "warning",
            "HOST": "127.0.0.1", "GRPC_PORT": "0"}  # fmt: skip
    rows = []
    port = free_port()
    env = {**base, "PORT": str(port), "WORKERS": "1", "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="bench-a-")}
    command = ["taskset", "-c", CPU_SERVER, sys.executable, "-m", "src.serve"]
    with serve("one worker", command, env, port, "/health/ready") as server:
        for connections in CONCURRENCY:
            result = measure(server, "/predict", body_of(TEXT), connections, args.seconds, 1)
            rows.append((connections, result))
            print(f"c={connections}: {result.requests_per_s:,.0f} req/s, p99 {result.p99_ms:.1f} ms", flush=True)
    within = [c for c, result in rows if result.p99_ms <= args.objective_ms and result.errors == 0]
    target = max(within) if within else None
    starts = []
    for _ in range(COLD_STARTS):
        port = free_port()
        env = {
            **base,
            "PORT": str(port),
            "WORKERS": "2",
            "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="bench-c-"),
        }
        with serve("cold start", [sys.executable, "-m", "src.serve"], env, port, "/health/ready") as server:
            starts.append(server.cold_start_s)
    lines = [
        "# The figures to autoscale on",
        "",
        f"`python -m bench.autoscaling` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: one worker pinned "
        f"to CPU {CPU_SERVER}, wrk on CPU {CPU_LOAD} for {args.seconds} s per concurrency, a short text to "
        "`/predict`; wrk's connections are the requests in flight.",
        "",
        "| requests in flight (wrk c) | req/s | p50 ms | p99 ms | errors |",
        "|---:|---:|---:|---:|---:|",
        *(f"| {c} | {r.requests_per_s:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} |" for c, r in rows),
        "",
        f"With a p99 objective of {args.objective_ms:g} ms, one worker holds up to "
        f"**{target if target is not None else 'none of these'}** requests in flight: the KEDA threshold per worker "
        "(k8s-overlays/keda/scaledobject.yaml; a pod of the base Deployment runs one worker per CPU it is given).",
        "",
        f"Cold start, the production server (2 workers, the default model) from process start to `/health/ready`: "
        f"median {statistics.median(starts):.2f} s, max {max(starts):.2f} s over {COLD_STARTS} starts "
        f"({' / '.join(f'{s:.2f}' for s in starts)}). A new pod also waits for its image and volume, which this "
        "machine cannot measure.",
        "",
    ]
    (ROOT / "bench" / "autoscaling.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
