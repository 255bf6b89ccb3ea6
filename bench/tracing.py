"""What traces cost: server CPU per /predict with traces off, on at 100% sampling (every request
exported over OTLP/HTTP to a local receiver), on at 1%, and on with the collector away (every export
fails), one worker per server.

The servers run at once, each pinned to CPU 0, wrk (c=16) to CPU 1, the receiver in this process;
rounds alternate so drift in the machine's speed falls on all alike. Writes bench/tracing.md;
reports, never fails.

python -m bench.tracing [--model-dir models] [--rounds 6] [--seconds 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.run import ROOT, alternating_rounds, free_port

CPU_SERVER, CPU_LOAD = "0", "1"
TEXT = "The acting was wooden and the plot made no sense at all."


class Receiver:
    """An OTLP/HTTP endpoint that takes every export and counts them (the bytes are not decoded)."""

    def __init__(self) -> None:
        self.exports = 0
        self.bytes = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                size = int(self.headers["Content-Length"])
                self.rfile.read(size)
                receiver.exports += 1
                receiver.bytes += size
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def main() -> int:
    """Measure, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path(os.environ.get("MODEL_DIR", "models")))
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=4)
    args = parser.parse_args()
    os.sched_setaffinity(0, {int(CPU_LOAD)})  # the receiver runs beside wrk, not beside the servers
    os.environ["WRK_CPU"] = CPU_LOAD
    receiver = Receiver()
    on = {"OTEL_TRACES_SAMPLER": "always_on", "OTEL_SERVICE_NAME": "ml-service-bench"}
    configurations = {
        "traces off": {},
        "traces on, 100% sampled": {**on, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint},
        "traces on, 1% sampled": {
            **on,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.01",
        },
        "traces on, collector away": {
            **on,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",  # nothing listens there
            "OTEL_EXPORTER_OTLP_TIMEOUT": "1",
        },
    }
    figures, errors = alternating_rounds(args.model_dir, configurations, TEXT, args.rounds, args.seconds)
    off = figures["traces off"]
    lines = [
        "# What traces cost",
        "",
        f"`python -m bench.tracing` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: one worker per server "
        f"pinned to CPU {CPU_SERVER}, wrk (c=16) and the OTLP receiver on CPU {CPU_LOAD}, {args.rounds} alternating "
        f"rounds of {args.seconds} s, a short text to `/predict`. Non-2xx answers: {errors}. The receiver took "
        f"{receiver.exports:,} export requests ({receiver.bytes / 1e6:,.1f} MB).",
        "",
        "| configuration | server CPU µs/request (median) | vs traces off (median of the rounds' ratios) | rounds |",
        "|---|---:|---:|---|",
    ]
    for name, values in figures.items():
        ratio = statistics.median(v / o for v, o in zip(values, off, strict=True))
        rounds = " / ".join(f"{v:.0f}" for v in values)
        lines.append(f"| {name} | {statistics.median(values):,.0f} | {ratio - 1:+.1%} | {rounds} |")
    lines += [
        "",
        "With traces on, each request makes three spans (the server span, `parse` and `score`; four with a",
        "prediction log); the worker's batch processor exports them from a background thread, whose CPU and",
        "GIL time are counted in the server's figure. With the collector away, each export fails fast and",
        "its spans are dropped and counted (`mlservice_trace_spans_dropped_total`).",
        "",
    ]
    (ROOT / "bench" / "tracing.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
