"""What the shared state costs: server CPU per keyed /predict with rates checked in Redis on loopback,
against the per-pod limiter, one worker each, in one run.

Both servers run at once, pinned to CPU 0, with wrk (c=16) and redis-server on CPU 1; rounds
alternate. The key may use every model at 1,000,000 requests per second (never refused: what is
measured is the check). Redis's own time per script run and the checks per run come from its
INFO commandstats. Writes bench/shared_state.md; reports, never fails.

python -m bench.shared_state [--model-dir models] [--rounds 6] [--seconds 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.run import ROOT, alternating_rounds, free_port
from bench.tenants import KEY, TEXT, write_key_file

CPU_SERVER, CPU_LOAD = "0", "1"


def _redis_stats(port: int) -> dict[str, float]:
    output = subprocess.run(
        ["redis-cli", "-p", str(port), "INFO", "commandstats"], capture_output=True, text=True, check=True, timeout=10
    ).stdout
    for line in output.splitlines():
        if line.startswith("cmdstat_evalsha:"):
            fields = dict(part.split("=") for part in line.split(":", 1)[1].split(","))
            return {"calls": float(fields["calls"]), "usec_per_call": float(fields["usec_per_call"])}
    return {"calls": 0.0, "usec_per_call": 0.0}


def main() -> int:
    """Measure, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path(os.environ.get("MODEL_DIR", "models")))
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=4)
    args = parser.parse_args()
    os.environ["WRK_CPU"] = CPU_LOAD
    folder = Path(tempfile.mkdtemp(prefix="bench-shared-state-"))
    key_file = write_key_file(folder)
    port = free_port()
    redis = subprocess.Popen(
        ["taskset", "-c", CPU_LOAD, "redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(0.5)
        configurations = {
            "per-pod limiter": {"API_KEYS_FILE": str(key_file)},
            "Redis on loopback": {"API_KEYS_FILE": str(key_file), "SHARED_STATE_URL": f"redis://127.0.0.1:{port}/0"},
        }
        figures, errors = alternating_rounds(
            args.model_dir, configurations, TEXT, args.rounds, args.seconds, keys=dict.fromkeys(configurations, KEY)
        )
        stats = _redis_stats(port)
    finally:
        redis.terminate()
        redis.wait(10)
    local, shared = figures.values()
    ratio = statistics.median(on / off for on, off in zip(shared, local, strict=True))
    difference = statistics.median(on - off for on, off in zip(shared, local, strict=True))
    lines = [
        "# What the shared state costs",
        "",
        f"`python -m bench.shared_state` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: one worker per "
        f"server pinned to CPU {CPU_SERVER}, wrk (c=16) and redis-server on CPU {CPU_LOAD}, {args.rounds} alternating "
        f"rounds of {args.seconds} s, a short text to `/predict` with a key whose rate (1,000,000/s) every request "
        f"is counted against. Non-2xx answers: {errors}.",
        "",
        "| rates held by | server CPU µs/request (median) | rounds |",
        "|---|---:|---|",
        *(
            f"| {name} | {statistics.median(values):,.0f} | {' / '.join(f'{v:.0f}' for v in values)} |"
            for name, values in figures.items()
        ),
        "",
        f"**The shared check costs {difference:+.0f} µs of server CPU per request ({ratio - 1:+.1%} of `/predict`)**, "
        "the median of the rounds' differences and ratios. The checks a worker asks while one script run is "
        "on its way go together in the next (src/tenants/shared_rates.py), so under load one run carries many; "
        f"Redis ran the script {stats['calls']:,.0f} times, {stats['usec_per_call']:.1f} µs of its own CPU each.",
        "",
    ]
    (ROOT / "bench" / "shared_state.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
