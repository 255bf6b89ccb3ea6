"""Batch scoring: rows per second and peak memory of `ml-service predict` on short texts, on every core
and on Spark local[2], against scikit-learn's own batch `predict_proba` on the same rows in the same run.

Texts are the bundled corpora's texts under 200 characters, drawn at random (seeded) into a Parquet file
with an id column. Each way runs as its own process; its peak memory is the largest sum of the resident
memory of it and its children (workers, Spark's JVM and Python workers), sampled every 0.2 s. The local
command also runs on a tenth of the rows, to show memory flat in the file's size.
Writes bench/batch.md; reports, never fails.

python -m bench.batch [--rows 1000000]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.run import ROOT

SKLEARN = """
import sys, pyarrow.parquet as pq
from src.config import get_settings
from src.store.registry import ModelRegistry
pipeline = ModelRegistry.from_settings(get_settings()).resolve(None).load().pipeline
texts = pq.read_table(sys.argv[1], columns=["text"]).column("text").to_pylist()
pipeline.predict_proba(texts)
"""


def write_texts(path: Path, rows: int) -> None:
    """`rows` short texts from the bundled corpora, with an id column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from src.model.datasets import load_bundled

    short = [text for text in load_bundled().texts if len(text) < 200]
    draw = random.Random(7)
    texts = [short[draw.randrange(len(short))] for _ in range(rows)]
    pq.write_table(pa.table({"id": range(rows), "text": texts}), path)


def _tree_rss(pid: int) -> int:
    """Resident bytes of `pid` and every descendant."""
    parents: dict[int, int] = {}
    resident: dict[int, int] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        child = int(status.parent.name)
        parents[child] = int(fields["PPid"])
        resident[child] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
    family, grew = {pid}, True
    while grew:
        more = {child for child, parent in parents.items() if parent in family} - family
        family |= more
        grew = bool(more)
    return sum(resident.get(member, 0) for member in family)


def measure(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak resident bytes (the whole process tree) of one command."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while process.poll() is None:
        peak = max(peak, _tree_rss(process.pid))
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    stderr = process.stderr.read().decode() if process.stderr else ""
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{stderr[-2000:]}")
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    env = {**os.environ, "MODEL_DIR": os.environ.get("MODEL_DIR", str(ROOT / "models"))}
    cli = [sys.executable, "-m", "src.cli", "predict", "--quiet", "--overwrite"]
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        source, tenth = work / "texts.parquet", work / "tenth.parquet"
        write_texts(source, args.rows)
        write_texts(tenth, args.rows // 10)
        figures = {
            "scikit-learn `predict_proba`, one call": measure([sys.executable, "-c", SKLEARN, str(source)], env),
            "`ml-service predict`, every core": measure(
                [*cli, "--input", str(source), "--output", str(work / "a.parquet")], env
            ),
            "`ml-service predict --spark local[2]`": measure(
                [*cli, "--input", str(source), "--output", str(work / "s.parquet"), "--spark", "local[2]"], env
            ),
        }
        small = measure([*cli, "--input", str(tenth), "--output", str(work / "b.parquet")], env)
    baseline = args.rows / figures["scikit-learn `predict_proba`, one call"][0]
    lines = [
        "# Batch scoring",
        "",
        f"`python -m bench.batch --rows {args.rows}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{os.cpu_count()} cores: {args.rows:,} short texts (the bundled corpora's texts under 200 characters) "
        "in a Parquet file, the default model. Wall time from process start to exit (imports, model load and "
        "writing the output included; scikit-learn's row reads the file and scores, writing nothing); peak "
        "memory of the process and its children.",
        "",
        "| way | seconds | rows/s | against scikit-learn | peak memory |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, (seconds, peak) in figures.items():
        rate = args.rows / seconds
        lines.append(f"| {name} | {seconds:.1f} | {rate:,.0f} | {rate / baseline:.2f}x | {peak / 2**20:,.0f} MiB |")
    lines += [
        "",
        f"Memory against the file's size: `ml-service predict` peaked at {small[1] / 2**20:,.0f} MiB on "
        f"{args.rows // 10:,} rows and {figures['`ml-service predict`, every core'][1] / 2**20:,.0f} MiB on "
        f"{args.rows:,}.",
        "",
    ]
    (ROOT / "bench" / "batch.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
