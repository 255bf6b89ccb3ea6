"""Many models under one memory budget: a model's first request (its load), steady-state /predict with
300 models served lazily against a store of one, and the store poll's cost with 300 models.

Servers run one worker pinned to CPU 0, wrk on CPU 1. The 300-model store is bench/many_models.py's.
Writes bench/lazy_models.md; reports, never fails.

python -m bench.lazy_models [--models 300] [--rounds 6] [--seconds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.many_models import build, model_name
from bench.run import ROOT, alternating_rounds, free_port, serve

CPU_SERVER, CPU_LOAD = "0", "1"
TEXT = "alpha beta great"


def poll_cost_ms(store: Path, polls: int = 20) -> tuple[float, float]:
    """Milliseconds of one store poll (list the models, check each loaded one's CURRENT) with every model
    served lazily and only the default loaded, and of listing the store alone; medians."""
    from src.serving.served_models import ServedModels
    from src.store.registry import ModelRegistry

    registry = ModelRegistry(store)
    models = ServedModels([registry], default_name="sentiment", max_models=100_000, lazy=True)
    models.load_all()
    polls_ms, lists_ms = [], []
    for _ in range(polls):
        started = time.perf_counter()
        asyncio.run(models.reload_if_changed())
        polls_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        registry.names()
        lists_ms.append((time.perf_counter() - started) * 1000)
    return statistics.median(polls_ms), statistics.median(lists_ms)


def start_seconds(store: Path) -> float:
    """Seconds from starting a lazy one-worker server on `store` to its readiness."""
    port = free_port()
    env = {"MODEL_DIR": str(store), "MODEL_LOAD": "lazy", "MAX_MODELS": "100000", "MODEL_POLL_SECONDS": "0",
           "LOG_LEVEL": "warning", "HOST": "127.0.0.1", "PORT": str(port), "WORKERS": "1", "GRPC_PORT": "0",
           "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="bench-start-")}  # fmt: skip
    with serve(
        "start", ["taskset", "-c", CPU_SERVER, sys.executable, "-m", "src.serve"], env, port, "/health/ready"
    ) as s:
        return s.cold_start_s


def first_requests_ms(store: Path, count: int, samples: int = 60) -> list[float]:
    """Milliseconds of the first request of `samples` models picked at random, one at a time."""
    port = free_port()
    env = {"MODEL_DIR": str(store), "MODEL_LOAD": "lazy", "MAX_MODELS": "100000", "MODEL_POLL_SECONDS": "0",
           "LOG_LEVEL": "warning", "HOST": "127.0.0.1", "PORT": str(port), "WORKERS": "1", "GRPC_PORT": "0",
           "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="bench-lazy-")}  # fmt: skip
    command = ["taskset", "-c", CPU_SERVER, sys.executable, "-m", "src.serve"]
    names = random.Random(1).sample([model_name(i) for i in range(1, count)], samples)
    times = []
    with serve("lazy", command, env, port, "/health/ready") as server:
        for name in names:
            body = b'{"text": "%s"}' % TEXT.encode()
            call = urllib.request.Request(
                f"{server.url}/models/{name}/predict", body, {"Content-Type": "application/json"}
            )
            started = time.perf_counter()
            with urllib.request.urlopen(call, timeout=30) as answer:
                answer.read()
            times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> int:
    """Measure, print and write the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=4)
    args = parser.parse_args()
    os.environ["WRK_CPU"] = CPU_LOAD
    folder = Path(tempfile.mkdtemp(prefix="bench-many-"))
    many, one = folder / "many", folder / "one"
    started = time.perf_counter()
    build(many, args.models)
    build(one, 1)
    print(f"stores built in {time.perf_counter() - started:.0f} s", flush=True)
    poll_ms, list_ms = poll_cost_ms(many)
    firsts = sorted(first_requests_ms(many, args.models))
    starts = {
        name: statistics.median(start_seconds(store) for _ in range(3))
        for name, store in (("one", one), ("many", many))
    }
    configurations = {
        "1 model": {"MODEL_DIR": str(one)},
        f"{args.models} models, lazy": {"MODEL_DIR": str(many), "MODEL_LOAD": "lazy", "MAX_MODELS": "100000"},
    }
    figures, errors = alternating_rounds(one, configurations, TEXT, args.rounds, args.seconds)
    lines = [
        "# Many models under one memory budget",
        "",
        f"`python -m bench.lazy_models` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: a store of "
        f"{args.models} small models (bench/many_models.py: TF-IDF + logistic regression, about 25 KB on disk and "
        "370 KB in memory each), one worker pinned to CPU 0, wrk on CPU 1.",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| first request of a model (its load), median of {len(firsts)} | {statistics.median(firsts):.1f} ms |",
        f"| first request, slowest of {len(firsts)} | {firsts[-1]:.1f} ms |",
        f"| a store poll with {args.models} models (list, check the loaded ones), median | {poll_ms:.2f} ms |",
        f"| listing the store alone, median | {list_ms:.2f} ms |",
        f"| start to ready, {args.models} models served lazily (median of 3) | {starts['many']:.2f} s |",
        f"| start to ready, a store of 1 model (median of 3) | {starts['one']:.2f} s |",
        "",
        f"Steady-state `/predict` on the default model ({args.rounds} alternating rounds of {args.seconds} s, wrk "
        f"c=16; non-2xx answers: {errors}):",
        "",
        "| store | server CPU µs/request (median) | rounds |",
        "|---|---:|---|",
        *(
            f"| {name} | {statistics.median(values):,.0f} | {' / '.join(f'{v:.0f}' for v in values)} |"
            for name, values in figures.items()
        ),
        "",
    ]
    (ROOT / "bench" / "lazy_models.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
