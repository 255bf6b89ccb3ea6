"""What the prediction log costs: server CPU per /predict with logging off and at 100%, one worker.

Both servers run at once, each pinned to CPU 0, wrk to CPU 1; rounds alternate (off, on, off, on,
...) so drift in the machine's speed falls on both alike. The log writes JSON Lines to a temporary
folder, every request sampled. Writes bench/prediction_log.md; reports, never fails.

python -m bench.prediction_log [--model-dir models] [--rounds 5] [--seconds 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench.run import ROOT, body_of, free_port, measure, serve

CPU_SERVER, CPU_LOAD = "0", "1"
CONNECTIONS = 16
TEXT = "The acting was wooden and the plot made no sense at all."


def main() -> int:
    """Measure, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path(os.environ.get("MODEL_DIR", "models")))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=4)
    args = parser.parse_args()
    os.environ["WRK_CPU"] = CPU_LOAD
    folder = Path(tempfile.mkdtemp(prefix="bench-prediction-log-"))
    configurations = {"log off": {}, "log on, 100%": {"PREDICTION_LOG_DIR": str(folder / "logs")}}
    figures: dict[str, list[float]] = {name: [] for name in configurations}
    with ExitStack() as stack:
        servers = {}
        for name, extra in configurations.items():
            port = free_port()
            env = {"MODEL_DIR": str(args.model_dir), "MODEL_POLL_SECONDS": "0", "LOG_LEVEL": "warning",
                   "HOST": "127.0.0.1", "PORT": str(port), "WORKERS": "1", "GRPC_PORT": "0",
                   "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="bench-m-"), **extra}  # fmt: skip
            command = ["taskset", "-c", CPU_SERVER, sys.executable, "-m", "src.serve"]
            servers[name] = stack.enter_context(serve(name, command, env, port, "/health/ready"))
        for round_number in range(args.rounds):
            for name, server in servers.items():
                result = measure(server, "/predict", body_of(TEXT), CONNECTIONS, args.seconds, 1)
                figures[name].append(result.cpu_us_per_request)
                print(f"round {round_number + 1} {name}: {result.cpu_us_per_request:.0f} µs CPU/request", flush=True)
    written = sum(path.stat().st_size for path in (folder / "logs").glob("*"))
    off, on = (statistics.median(values) for values in figures.values())
    lines = [
        "# What the prediction log costs",
        "",
        f"`python -m bench.prediction_log` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: one worker per "
        f"server pinned to CPU {CPU_SERVER}, wrk (c={CONNECTIONS}) on CPU {CPU_LOAD}, {args.rounds} alternating "
        f"rounds of {args.seconds} s, a short text to `/predict`; the log writes JSON Lines, every request sampled "
        f"({written / 1e6:.1f} MB written).",
        "",
        "| configuration | server CPU µs/request (median) | rounds |",
        "|---|---:|---|",
        *(
            f"| {name} | {statistics.median(values):,.0f} | {' / '.join(f'{v:.0f}' for v in values)} |"
            for name, values in figures.items()
        ),
        "",
        f"Logging at 100% costs {on - off:+.0f} µs CPU per request ({on / off - 1:+.1%}; target: at most +5%).",
        "",
    ]
    (ROOT / "bench" / "prediction_log.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
