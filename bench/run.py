"""The benchmark behind `make bench`: ml-service against a seed-style baseline, in one run.

Everything runs on 127.0.0.1 with wrk (Debian) and bench/wrk.lua. Each configuration is measured
REPEATS times and the median reported; ratios compare figures from this same run, because timings
on a shared 2-core machine drift. It reports; it never fails on a slow machine.
Writes bench/results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import inprocess
from src.model.datasets import load_bundled
from src.model.trainer import ModelTrainer
from src.store.registry import ModelRegistry

ROOT = Path(__file__).resolve().parents[1]
WRK_SCRIPT = ROOT / "bench" / "wrk.lua"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def process_tree(pid: int) -> list[int]:
    """The pid and every descendant's pid."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending += children.get(current, [])
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid: int) -> float:
    """Resident memory of one process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Server:
    """A server under test: its root pid, its worker pids and URL."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    cold_start_s: float

    def workers(self) -> list[int]:
        tree = process_tree(self.process.pid)
        # The serving processes: the ones holding the model (resident memory over 100 MiB).
        return [pid for pid in tree if rss_mib(pid) > 100] or [self.process.pid]


@contextmanager
def serve(name: str, command: list[str], env: dict[str, str], port: int, ready: str) -> Iterator[Server]:
    """Start a server, time it to ready, yield it, stop it by pid."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + ready, timeout=1) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError(f"{name} did not become ready")
        time.sleep(0.02)
    cold_start = time.perf_counter() - started
    try:
        yield Server(name, process, url, cold_start)
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class Measurement:
    """One configuration's median figures."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us_per_request: float
    cpu_share_per_worker: list[float]


def measure(
    server: Server,
    path: str,
    body: str | None,
    connections: int,
    seconds: int,
    repeats: int,
    content_type: str = "application/json",
) -> Measurement:
    """wrk against one endpoint, `repeats` times; medians, and CPU time of the server's processes."""
    runs = []
    workers = server.workers()
    for _ in range(repeats):
        pids = process_tree(server.process.pid)
        before = {pid: cpu_seconds(pid) for pid in pids}
        env = {**os.environ, "METHOD": "POST" if body else "GET", "BODY": body or "", "CONTENT_TYPE": content_type}
        # WRK_CPU pins wrk to one core (bench/ab.py pins the server to the other).
        pin = ["taskset", "-c", os.environ["WRK_CPU"]] if os.environ.get("WRK_CPU") else []
        output = subprocess.run(
            [*pin, "wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(WRK_SCRIPT), server.url + path],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout
        result = json.loads(output.strip().splitlines()[-1])
        used = {pid: cpu_seconds(pid) - before.get(pid, 0.0) for pid in pids}
        wall = result["duration_us"] / 1e6
        runs.append(
            Measurement(
                requests_per_s=result["requests"] / wall,
                p50_ms=result["p50_us"] / 1000,
                p99_ms=result["p99_us"] / 1000,
                errors=result["socket_errors"] + result["non_2xx"],
                cpu_us_per_request=sum(used.values()) / max(result["requests"], 1) * 1e6,
                cpu_share_per_worker=[used.get(pid, 0.0) / wall for pid in workers],
            )
        )
    best = sorted(runs, key=lambda m: m.requests_per_s)[len(runs) // 2]
    return Measurement(
        requests_per_s=statistics.median(m.requests_per_s for m in runs),
        p50_ms=statistics.median(m.p50_ms for m in runs),
        p99_ms=statistics.median(m.p99_ms for m in runs),
        errors=sum(m.errors for m in runs),
        cpu_us_per_request=statistics.median(m.cpu_us_per_request for m in runs),
        cpu_share_per_worker=best.cpu_share_per_worker,
    )


def body_of(text: str) -> str:
    return json.dumps({"text": text})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=Path(os.environ.get("MODEL_DIR", "models")))
    parser.add_argument("--seconds", type=int, default=4, help="duration of one wrk run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration (the median is reported)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results.md")
    args = parser.parse_args()
    model_dir = args.model_dir.resolve()

    print("in-process figures ...", flush=True)
    figures = inprocess.run(model_dir)
    texts = figures.texts
    short, long = body_of(texts.short[0]), body_of(texts.long[0])
    batch = json.dumps({"texts": texts.short[:256]})
    connections = (8, 32, 64)
    http: dict[tuple[str, str, int], Measurement] = {}
    info: dict[str, dict[str, object]] = {}
    metrics_dir = tempfile.mkdtemp(prefix="bench-metrics-")
    common = {"MODEL_DIR": str(model_dir), "MODEL_POLL_SECONDS": "0", "LOG_LEVEL": "warning"}

    def record(server: Server) -> None:
        record_info(server, info)

    port = free_port()
    service_env = {**common, "HOST": "127.0.0.1", "PORT": str(port), "WORKERS": str(args.workers), "GRPC_PORT": "0",
                   "PROMETHEUS_MULTIPROC_DIR": metrics_dir}  # fmt: skip
    with serve("ml-service", [sys.executable, "-m", "src.serve"], service_env, port, "/health/ready") as server:
        record(server)
        for c in connections:
            print(f"ml-service c={c} ...", flush=True)
            http["ml-service /predict short", "short", c] = measure(
                server, "/predict", short, c, args.seconds, args.repeats
            )
            http["ml-service /predict long", "long", c] = measure(
                server, "/predict", long, c, args.seconds, args.repeats
            )
            http["ml-service /health/live (ceiling)", "-", c] = measure(
                server, "/health/live", None, c, args.seconds, args.repeats
            )
        explained = json.dumps({"text": texts.short[0], "explain": True})
        http["ml-service /predict short, explain=true", "explain", 32] = measure(
            server, "/predict", explained, 32, args.seconds, args.repeats
        )
        http["ml-service /predict/batch 256 short", "batch", 32] = measure(
            server, "/predict/batch", batch, 8, args.seconds, args.repeats
        )
        v2_body = json.dumps(
            {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [texts.short[0]]}]}
        )
        http["ml-service /v2/models/sentiment/infer short (JSON)", "v2", 32] = measure(
            server, "/v2/models/sentiment/infer", v2_body, 32, args.seconds, args.repeats
        )

    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "src.api.main:app", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(args.workers), "--no-access-log", "--log-level", "warning"]  # fmt: skip
    with serve("uvicorn --workers (shared socket)", command, {**common, "PROMETHEUS_MULTIPROC_DIR": metrics_dir},
               port, "/health/ready") as server:  # fmt: skip
        record(server)
        print("uvicorn --workers c=32 ...", flush=True)
        http["uvicorn --workers /predict short", "short", 32] = measure(
            server, "/predict", short, 32, args.seconds, args.repeats
        )

    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bench.naive_server:app", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(args.workers), "--no-access-log", "--log-level", "warning"]  # fmt: skip
    with serve("naive baseline", command, common, port, "/docs") as server:
        record(server)
        for c in connections:
            print(f"naive c={c} ...", flush=True)
            http["naive /predict short", "short", c] = measure(server, "/predict", short, c, args.seconds, args.repeats)
            http["naive /predict long", "long", c] = measure(server, "/predict", long, c, args.seconds, args.repeats)

    single = single_worker(model_dir, short, args, info)

    report = render(figures, http, info, args, single)
    args.output.write_text(report)
    print(report)
    return 0


def two_model_store(model_dir: Path, root: Path) -> str:
    """A store root with the default model (copied) and a second real classifier; the second's name."""
    source = ModelRegistry(model_dir).resolve()
    target = ModelRegistry(root).store()
    target.root.mkdir(parents=True)
    version = str(source.current_version())
    shutil.copytree(source.root / version, target.root / version)
    target.activate(version)
    kinds = {"imdb": "review", "rotten_tomatoes": "review", "tweets": "tweet"}
    part = load_bundled().where(lambda s: s in kinds).sample(5000, random_state=1)
    ModelTrainer().train(part.texts, [kinds[s] for s in part.sources]).save_model(root, name="kinds")
    return "kinds"


SINGLE_CONNECTIONS = 16


def single_worker(
    model_dir: Path, short: str, args: argparse.Namespace, info: dict[str, dict[str, object]]
) -> dict[str, Measurement]:
    """Server CPU per request with one worker: ml-service (one model, two models) against the bare limit."""
    results: dict[str, Measurement] = {}
    c = SINGLE_CONNECTIONS
    v2_body = json.dumps(
        {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [json.loads(short)["text"]]}]}
    )
    with tempfile.TemporaryDirectory(prefix="bench-two-models-") as folder:
        second = two_model_store(model_dir, Path(folder) / "models")
        stores = {"1 model": model_dir, "2 models": Path(folder) / "models"}
        for label, store in stores.items():
            port = free_port()
            env = {"MODEL_DIR": str(store), "MODEL_POLL_SECONDS": "0", "LOG_LEVEL": "warning", "HOST": "127.0.0.1",
                   "PORT": str(port), "WORKERS": "1", "GRPC_PORT": str(free_port()),
                   "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="bench-m-")}  # fmt: skip
            name = f"ml-service, 1 worker, {label}"
            with serve(name, [sys.executable, "-m", "src.serve"], env, port, "/health/ready") as server:
                record_info(server, info)
                print(f"{name} ...", flush=True)
                results[f"{label} /predict"] = measure(server, "/predict", short, c, args.seconds, args.repeats)
                if label == "1 model":
                    results[f"{label} V2 infer"] = measure(
                        server, "/v2/models/sentiment/infer", v2_body, c, args.seconds, args.repeats
                    )
                else:
                    results[f"{label} /models/{second}/predict"] = measure(
                        server, f"/models/{second}/predict", short, c, args.seconds, args.repeats
                    )
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bench.bare_server:app", "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1", "--http", "httptools", "--no-access-log", "--log-level", "warning"]  # fmt: skip
    with serve("bare ASGI limit, 1 worker", command, {"MODEL_DIR": str(model_dir)}, port, "/") as server:
        record_info(server, info)
        print("bare ASGI limit ...", flush=True)
        results["bare ASGI /predict"] = measure(server, "/predict", short, c, args.seconds, args.repeats)
    return results


def record_info(server: Server, info: dict[str, dict[str, object]]) -> None:
    """Cold start and resident memory per worker of a server, for the report."""
    info[server.name] = {
        "cold_start_s": server.cold_start_s,
        "rss_mib": [round(rss_mib(pid)) for pid in server.workers()],
    }


def render_single(single: dict[str, Measurement]) -> list[str]:
    """The one-worker section: server CPU per request against the bare limit, one and two models."""
    bare = single["bare ASGI /predict"].cpu_us_per_request
    lines = [
        "",
        f"## One worker: server CPU per request against the bare limit (short text, wrk c={SINGLE_CONNECTIONS})",
        "",
        "The bare limit is `bench/bare_server.py`: an ASGI callable under the same uvicorn, with the same",
        "compiled scorer and no framework. Share = bare CPU / this CPU (100% would be no overhead at all).",
        "",
        "| configuration | req/s | server CPU µs/req | share of the bare limit | target |",
        "|---|---:|---:|---:|---|",
    ]
    targets = {"1 model /predict": ">= 50%", "1 model V2 infer": ">= 40%"}
    for name, m in single.items():
        share = bare / m.cpu_us_per_request if m.cpu_us_per_request else 0.0
        lines.append(
            f"| {name} | {m.requests_per_s:,.0f} | {m.cpu_us_per_request:,.0f} | {share:.0%} | {targets.get(name, '')} |"
        )
    one, two = single["1 model /predict"], single["2 models /predict"]
    lines += [
        "",
        f"Two models loaded vs one, /predict: {two.cpu_us_per_request:,.0f} vs {one.cpu_us_per_request:,.0f} µs CPU "
        f"per request ({two.cpu_us_per_request / one.cpu_us_per_request - 1:+.0%}; target: no more).",
    ]
    return lines


def render(
    figures: inprocess.Figures,
    http: dict[tuple[str, str, int], Measurement],
    info: dict[str, dict[str, object]],
    args: argparse.Namespace,
    single: dict[str, Measurement],
) -> str:
    """The markdown report."""
    lines = [
        "# Benchmark results",
        "",
        f"`make bench` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores shared with wrk, "
        f"{args.workers} workers per server, wrk -t2 for {args.seconds} s, median of {args.repeats} runs.",
        "",
        "## HTTP (loopback, wrk)",
        "",
        "| server and endpoint | conns | req/s | p50 ms | p99 ms | errors | server CPU µs/req | CPU per worker |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for (name, _, c), m in http.items():
        shares = " / ".join(f"{s:.0%}" for s in m.cpu_share_per_worker)
        lines.append(
            f"| {name} | {c if 'batch' not in name else 8} | {m.requests_per_s:,.0f} | {m.p50_ms:.2f} | {m.p99_ms:.2f} "
            f"| {m.errors} | {m.cpu_us_per_request:,.0f} | {shares} |"
        )
    lines += ["", "## Ratios (same run)", "", "| ratio | value | target |", "|---|---:|---|"]
    for c in (8, 32, 64):
        ours, naive = http["ml-service /predict short", "short", c], http["naive /predict short", "short", c]
        ceiling = http["ml-service /health/live (ceiling)", "-", c]
        lines.append(
            f"| /predict short vs naive, c={c} | {ours.requests_per_s / naive.requests_per_s:.1f}x | >= 5x at c=32 |"
        )
        lines.append(
            f"| /predict short vs own /health/live, c={c} | {ours.requests_per_s / ceiling.requests_per_s:.0%} | >= 80% |"
        )
        long_ours, long_naive = http["ml-service /predict long", "long", c], http["naive /predict long", "long", c]
        lines.append(
            f"| /predict long vs naive, c={c} | {long_ours.requests_per_s / long_naive.requests_per_s:.1f}x | |"
        )
    v2 = http["ml-service /v2/models/sentiment/infer short (JSON)", "v2", 32]
    plain_32 = http["ml-service /predict short", "short", 32]
    naive_32 = http["naive /predict short", "short", 32]
    lines.append(
        f"| V2 infer (JSON) vs naive /predict, short, c=32 | {v2.requests_per_s / naive_32.requests_per_s:.1f}x | reported |"
    )
    lines.append(
        f"| V2 infer vs /predict, short, c=32 | {v2.requests_per_s / plain_32.requests_per_s:.0%} of the req/s, "
        f"{v2.cpu_us_per_request - plain_32.cpu_us_per_request:+.0f} µs CPU per request | reported |"
    )
    explained = http["ml-service /predict short, explain=true", "explain", 32]
    plain = http["ml-service /predict short", "short", 32]
    lines.append(
        f"| explain=true vs plain /predict, c=32 | {explained.requests_per_s / plain.requests_per_s:.0%} of the req/s, "
        f"+{explained.cpu_us_per_request - plain.cpu_us_per_request:.0f} µs CPU per request | reported |"
    )
    scoring = figures.scoring
    batch = http["ml-service /predict/batch 256 short", "batch", 32]
    compiled_256 = next(row[1] for row in scoring if row[0] == "batch of 256 short")
    served = batch.requests_per_s * 256
    in_process = 1e6 / compiled_256
    lines.append(
        f"| batch endpoint texts/s vs in-process compiled | {served:,.0f} / {in_process:,.0f} = {served / in_process:.0%} | >= 50% |"
    )
    lines += render_single(single)
    lines += ["", "## Servers", "", "| server | cold start to ready, s | RSS per worker, MiB |", "|---|---:|---|"]
    for name, values in info.items():
        lines.append(f"| {name} | {values['cold_start_s']:.2f} | {values['rss_mib']} |")
    lines += [
        "",
        "## In process (one core)",
        "",
        "| case | compiled µs/text | Pipeline µs/text | speed-up |",
        "|---|---:|---:|---:|",
    ]
    for case, compiled, pipeline in scoring:
        if pipeline != pipeline:  # NaN: no Pipeline counterpart (explanations, the preprocessor alone)
            lines.append(f"| {case} | {compiled:.1f} | - | - |")
        else:
            lines.append(f"| {case} | {compiled:.1f} | {pipeline:.1f} | {pipeline / compiled:.1f}x |")
    lines += [
        "",
        f"Parity: largest |compiled - Pipeline| probability difference over {figures.parity_texts} bundled texts: "
        f"{figures.parity_max_abs_diff:.1e}.",
        "",
        f"Model load + verify + compile: {figures.load_seconds:.2f} s for a {figures.model_bytes / 2**20:.1f} MiB file "
        f"(the same Pipeline saved the plain skops way, vocabulary as a dict: {figures.dict_format_load_seconds:.1f} s, "
        f"{figures.dict_format_bytes / 2**20:.0f} MiB).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())


def alternating_rounds(
    model_dir: Path,
    configurations: dict[str, dict[str, str]],
    text: str,
    rounds: int,
    seconds: int,
    *,
    keys: dict[str, str] | None = None,
    connections: int = 16,
    cpu_server: str = "0",
) -> tuple[dict[str, list[float]], int]:
    """One single-worker server per configuration (extra environment), all pinned to `cpu_server`,
    measured in turns with wrk on /predict (X-API-Key from `keys`, per configuration): the server CPU
    µs per request of each round, and the non-2xx answers. Which server goes first alternates: the
    second of a pair measures a few % higher here."""
    figures: dict[str, list[float]] = {name: [] for name in configurations}
    errors = 0
    with ExitStack() as stack:
        servers = {}
        for name, extra in configurations.items():
            port = free_port()
            env = {"MODEL_DIR": str(model_dir), "MODEL_POLL_SECONDS": "0", "LOG_LEVEL": "warning",
                   "HOST": "127.0.0.1", "PORT": str(port), "WORKERS": "1", "GRPC_PORT": "0",
                   "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="bench-m-"), **extra}  # fmt: skip
            command = ["taskset", "-c", cpu_server, sys.executable, "-m", "src.serve"]
            servers[name] = stack.enter_context(serve(name, command, env, port, "/health/ready"))
        for round_number in range(rounds):
            order = list(servers.items()) if round_number % 2 == 0 else list(reversed(servers.items()))
            for name, server in order:
                key = (keys or {}).get(name)
                if key:
                    os.environ["API_KEY"] = key
                result = measure(server, "/predict", body_of(text), connections, seconds, 1)
                os.environ.pop("API_KEY", None)
                errors += result.errors
                figures[name].append(result.cpu_us_per_request)
                print(f"round {round_number + 1} {name}: {result.cpu_us_per_request:.0f} µs CPU/request", flush=True)
    return figures, errors
