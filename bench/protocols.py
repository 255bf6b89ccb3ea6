"""What each protocol costs: server CPU per request for /predict, V2 infer over REST and gRPC, V1
predict and MLflow's /invocations (a data frame and CSV), one worker, the same short text.

The server runs pinned to CPU 0; the load runs on CPU 1: wrk for the HTTP routes, a Python client
of 8 threads on one gRPC channel each (the raw stub, the request built once) for gRPC. Rounds
alternate over the protocols; medians reported. Writes bench/protocols.md; reports, never fails.

python -m bench.protocols [--model-dir models] [--rounds 3] [--seconds 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc

from bench.run import ROOT, Server, body_of, cpu_seconds, free_port, measure, process_tree, serve

CPU_SERVER, CPU_LOAD = "0", "1"
CONNECTIONS = 16
THREADS = 8
TEXT = "The acting was wooden and the plot made no sense at all."
JSON = "application/json"
# Each HTTP protocol's request for TEXT: (path, body, content type).
HTTP_ROUTES = {
    "/predict": ("/predict", body_of(TEXT), JSON),
    "V2 infer (REST, JSON)": (
        "/v2/models/sentiment/infer",
        json.dumps({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [TEXT]}]}),
        JSON,
    ),
    "V1 predict": ("/v1/models/sentiment:predict", json.dumps({"instances": [TEXT]}), JSON),
    "MLflow dataframe_split": (
        "/invocations",
        json.dumps({"dataframe_split": {"columns": ["text"], "data": [[TEXT]]}}),
        JSON,
    ),
    "MLflow CSV": ("/invocations", f"text\n{TEXT}\n", "text/csv"),
}
GRPC = "gRPC ModelInfer"


def grpc_round(server: Server, target: str, seconds: float) -> tuple[float, float]:
    """Requests per second and server CPU µs per request of gRPC ModelInfer for `seconds`."""
    message = service_pb2.ModelInferRequest(model_name="sentiment")
    message.inputs.add(name="text", datatype="BYTES", shape=[1]).contents.bytes_contents.append(TEXT.encode())
    counts = [0] * THREADS
    deadline = time.monotonic() + seconds

    def load(index: int) -> None:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(target))
        stub.ModelInfer(message)  # connect before the clock
        while time.monotonic() < deadline:
            stub.ModelInfer(message)
            counts[index] += 1

    pids = process_tree(server.process.pid)
    before = {pid: cpu_seconds(pid) for pid in pids}
    started = time.monotonic()
    threads = [threading.Thread(target=load, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    used = sum(cpu_seconds(pid) - before.get(pid, 0.0) for pid in pids)
    total = sum(counts)
    return total / wall, used / max(total, 1) * 1e6


def main() -> int:
    """Measure, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path(os.environ.get("MODEL_DIR", "models")))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=4)
    args = parser.parse_args()
    os.sched_setaffinity(0, {int(CPU_LOAD)})  # this process is the gRPC load
    os.environ["WRK_CPU"] = CPU_LOAD
    port, grpc_port = free_port(), free_port()
    env = {"MODEL_DIR": str(args.model_dir), "MODEL_POLL_SECONDS": "0", "LOG_LEVEL": "warning", "HOST": "127.0.0.1",
           "PORT": str(port), "GRPC_PORT": str(grpc_port), "WORKERS": "1",
           "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="bench-protocols-")}  # fmt: skip
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in [*HTTP_ROUTES, GRPC]}
    command = ["taskset", "-c", CPU_SERVER, sys.executable, "-m", "src.serve"]
    with serve("ml-service", command, env, port, "/health/ready") as server:
        for round_number in range(args.rounds):
            for name in figures:
                if name == GRPC:
                    rate, cpu = grpc_round(server, f"127.0.0.1:{grpc_port}", args.seconds)
                else:
                    path, body, content_type = HTTP_ROUTES[name]
                    result = measure(server, path, body, CONNECTIONS, args.seconds, 1, content_type)
                    if result.errors:
                        print(f"warning: {name}: {result.errors} requests failed; its figures are not comparable")
                    rate, cpu = result.requests_per_s, result.cpu_us_per_request
                figures[name].append((rate, cpu))
                print(f"round {round_number + 1} {name}: {rate:,.0f} req/s, {cpu:.0f} µs CPU/request", flush=True)
    medians = {
        name: (statistics.median(r for r, _ in v), statistics.median(c for _, c in v)) for name, v in figures.items()
    }
    predict_cpu = medians["/predict"][1]
    lines = [
        "# What each protocol costs",
        "",
        f"`python -m bench.protocols` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: one worker pinned to "
        f"CPU {CPU_SERVER}; load on CPU {CPU_LOAD} (wrk c={CONNECTIONS} for REST, {THREADS} gRPC client threads); "
        f"{args.rounds} alternating rounds of {args.seconds} s; one short text per request.",
        "",
        "| protocol | req/s | server CPU µs/request | vs /predict |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {rate:,.0f} | {cpu:,.0f} | {cpu / predict_cpu:.2f}x |" for name, (rate, cpu) in medians.items()),
        "",
        "The gRPC client is Python (8 threads, one core), so its req/s is the client's limit as much as the",
        "server's; the server CPU per request is the figure to compare.",
        "",
    ]
    (ROOT / "bench" / "protocols.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
