"""Compiled scoring per supported pipeline type, against the Pipeline's own call: µs per short text.

    python -m bench.model_types [--output bench/model_types.md]

Each type of the parity matrix (tests/engine/pipelines.py) is trained on 3,000 bundled texts and
timed in process, on one core, one text per call, as a /predict request scores it: the compiled
scorer (label and probabilities or scores) against the Pipeline's `predict_proba` (or
`decision_function`) on a one-text list. Parity over 1,000 texts is reported beside each.
`make bench` runs it after the HTTP benchmark.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from functools import partial
from pathlib import Path

from bench.inprocess import bench_texts, per_call_us
from src.engine.compiled import CompiledScorer
from src.engine.parity import builtin_texts, check_parity
from src.model.datasets import load_bundled
from src.store.serialization import dump_pipeline, load_pipeline
from tests.engine.pipelines import SUPPORTED
from tests.engine.test_model_types import labels_for

ROOT = Path(__file__).resolve().parents[1]


def rows(calls: int = 2000) -> list[tuple[str, str, float, float, float]]:
    """(type, output, compiled µs, Pipeline µs, parity) for every supported type."""
    data = load_bundled()
    train = data.sample(3000, random_state=21)
    short = bench_texts(data).short
    texts = builtin_texts(1000, seed=3)
    table = []
    for kind, (make, three) in sorted(SUPPORTED.items()):
        pipeline = load_pipeline(dump_pipeline(make().fit(train.texts, labels_for(train, three))))
        scorer = CompiledScorer(pipeline)
        own = pipeline.predict_proba if scorer.has_probabilities else pipeline.decision_function
        one = short[0]
        compiled = per_call_us(lambda: scorer.outputs(scorer.weigh(one)), calls)  # noqa: B023 - timed at once
        native = per_call_us(partial(own, [one]), calls // 10)
        report = check_parity(pipeline, pipeline, texts)
        table.append(
            (
                kind,
                "probabilities" if scorer.has_probabilities else "scores",
                compiled,
                native,
                report.max_abs_difference,
            )
        )
    return table


def render(table: list[tuple[str, str, float, float, float]]) -> str:
    lines = [
        "# Compiled scoring per pipeline type",
        "",
        f"`python -m bench.model_types` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
        "one core used; one short text (a 12-18 word Rotten Tomatoes sentence) per call, median of 5 runs.",
        "",
        "| pipeline type | output | compiled µs/text | Pipeline µs/text | speed-up | parity over 1,000 texts |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for kind, output, compiled, native, parity in table:
        lines.append(f"| {kind} | {output} | {compiled:.1f} | {native:.1f} | {native / compiled:.1f}x | {parity:.1e} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "model_types.md")
    args = parser.parse_args()
    report = render(rows())
    args.output.write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
