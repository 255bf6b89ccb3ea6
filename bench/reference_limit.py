"""/predict held against the reference limit, `../shared/bench/bare_limit.py`, the way its docstring says.

The production server (WORKERS=1) and the reference's bare ASGI callable under uvicorn each pinned to
core 0, wrk (one thread, 32 connections) pinned to core 1 for 8 s after a 2 s warm-up, the same
one-sentence body; the figure is server CPU per request from /proc of the server's process tree,
alternated `--rounds` times. The ratio is bare / project (1.0 would be no overhead over the limit).

    python -m bench.reference_limit [--project PATH]   (PATH: another checkout, e.g. an older commit)

Writes bench/reference_limit.md (not with --project). It reports; it never fails on a slow machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.run import WRK_SCRIPT, cpu_seconds, free_port, process_tree

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "bench"
TEXT = "take care of my cat offers a refreshingly different slice of asian cinema ."


def _wrk(url: str, seconds: int) -> dict[str, float]:
    env = {**os.environ, "METHOD": "POST", "BODY": json.dumps({"text": TEXT}), "CONTENT_TYPE": "application/json"}
    command = ["taskset", "-c", "1", "wrk", "-t1", "-c32", f"-d{seconds}s", "-s", str(WRK_SCRIPT), url]
    output = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def cpu_per_request(command: list[str], env: dict[str, str], port: int, cwd: Path) -> tuple[float, float]:
    """Server CPU µs per /predict request and requests/s, after a 2 s warm-up."""
    process = subprocess.Popen(
        command, cwd=cwd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 90
        while True:  # both answer GET /health/live (the reference answers any other path with 200)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{' '.join(command)} did not become ready")
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/predict"
        _wrk(url, 2)
        pids = process_tree(process.pid)
        before = {pid: cpu_seconds(pid) for pid in pids}
        result = _wrk(url, 8)
        used = sum(cpu_seconds(pid) - before.get(pid, 0.0) for pid in pids)
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
        if result["non_2xx"] or result["socket_errors"]:
            raise RuntimeError(f"{result['non_2xx']} non-2xx answers, {result['socket_errors']} socket errors")
    return used / max(result["requests"], 1) * 1e6, result["requests"] / (result["duration_us"] / 1e6)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, default=ROOT, help="the checkout whose server is measured")
    parser.add_argument("--model-dir", type=Path, default=Path(os.environ.get("MODEL_DIR", "models")).resolve())
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if not (REFERENCE / "bare_limit.py").is_file():
        print(f"no reference limit at {REFERENCE / 'bare_limit.py'}: nothing measured")
        return 0
    project = args.project.resolve()
    base = {"MODEL_DIR": str(args.model_dir), "PROJECT_ROOT": str(project), "PYTHONPATH": str(project)}
    ours, bare = [], []
    for _ in range(args.rounds):
        port = free_port()
        env = {**base, "HOST": "127.0.0.1", "PORT": str(port), "WORKERS": "1", "GRPC_PORT": str(free_port())}
        ours.append(cpu_per_request(["taskset", "-c", "0", sys.executable, "-m", "src.serve"], env, port, project))
        port = free_port()
        uvicorn = [sys.executable, "-m", "uvicorn", "--app-dir", str(REFERENCE), "bare_limit:app", "--no-access-log"]
        command = ["taskset", "-c", "0", *uvicorn, "--host", "127.0.0.1", "--port", str(port)]
        bare.append(cpu_per_request(command, base, port, project))
    ours_us, bare_us = statistics.median(u for u, _ in ours), statistics.median(u for u, _ in bare)
    paired = [b / o for (o, _), (b, _) in zip(ours, bare, strict=True)]
    lines = [
        "# /predict against the reference limit (../shared/bench/bare_limit.py)",
        "",
        f"`python -m bench.reference_limit` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: server and",
        "reference pinned to core 0, wrk -t1 -c32 on core 1, 8 s after a 2 s warm-up, one-sentence body,",
        f"{args.rounds} alternated rounds (medians).",
        "",
        "| server | server CPU µs/request | req/s | rounds (µs) |",
        "|---|---:|---:|---|",
        f"| ml-service /predict (WORKERS=1) | {ours_us:.0f} | {statistics.median(r for _, r in ours):,.0f} | "
        + ", ".join(f"{u:.0f}" for u, _ in ours)
        + " |",
        f"| reference limit | {bare_us:.0f} | {statistics.median(r for _, r in bare):,.0f} | "
        + ", ".join(f"{u:.0f}" for u, _ in bare)
        + " |",
        "",
        f"**/predict at {bare_us / ours_us:.3f} of the reference limit** (bare CPU / ours; target >= 0.55).",
        "",
        "Each round's own ratio (its reference run just after it, so both saw the same machine): "
        + ", ".join(f"{ratio:.2f}" for ratio in paired)
        + f"; their median {statistics.median(paired):.3f}.",
        "",
    ]
    print("\n".join(lines))
    if args.project == ROOT:
        (ROOT / "bench" / "reference_limit.md").write_text("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
