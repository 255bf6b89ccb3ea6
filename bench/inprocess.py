"""In-process figures: scoring cost per text, compiled against the Pipeline, parity, load time."""

from __future__ import annotations

import statistics
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import skops.io

from src.model.datasets import Dataset, load_bundled
from src.serving.predictor import Predictor
from src.store.registry import ModelRegistry
from src.store.serialization import TRUSTED_TYPES
from src.store.store import StoredModel


@dataclass(frozen=True)
class Texts:
    """Benchmark inputs: short (~15 words) and long (~250 words) real texts."""

    short: list[str]
    long: list[str]


def bench_texts(data: Dataset, count: int = 512) -> Texts:
    """Rotten Tomatoes sentences of 12-18 words, and IMDB reviews cut to 250 words."""
    short = [
        t
        for t, s in zip(data.texts, data.sources, strict=True)
        if s == "rotten_tomatoes" and 12 <= len(t.split()) <= 18
    ]
    long = [
        " ".join(t.split()[:250])
        for t, s in zip(data.texts, data.sources, strict=True)
        if s == "imdb" and len(t.split()) >= 250
    ]
    return Texts(short[:count], long[:count])


def per_call_us(function: Callable[[], object], calls: int, repeats: int = 5) -> float:
    """Median over repeats of the mean microseconds per call."""
    function()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            function()
        samples.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(samples)


def scoring_table(stored: StoredModel, texts: Texts) -> list[tuple[str, float, float]]:
    """(case, compiled µs per text, Pipeline µs per text) for one text and batches of 32 and 256."""
    predictor = Predictor(stored)
    pipeline = stored.pipeline
    preprocess = pipeline.steps[0][1].build_preprocessor()
    rows = [("preprocessing one short text", per_call_us(partial(preprocess, texts.short[0]), 20000), float("nan"))]
    for name, pool in (("short", texts.short), ("long", texts.long)):
        one = pool[0]
        calls = 2000 if name == "short" else 300
        rows.append(
            (
                f"one {name} text, explained",
                per_call_us(partial(predictor.predict_explained, one), calls // 2),
                float("nan"),
            )
        )
        rows.append(
            (
                f"one {name} text",
                per_call_us(partial(predictor.predict, one), calls),
                per_call_us(partial(pipeline.predict_proba, [one]), calls // 10),
            )
        )
        for size in (32, 256):
            batch = pool[:size]
            rows.append(
                (
                    f"batch of {size} {name}",
                    per_call_us(partial(predictor.predict_batch, batch), 5) / size,
                    per_call_us(partial(pipeline.predict_proba, batch), 5) / size,
                )
            )
    return rows


def parity(stored: StoredModel, texts: Sequence[str]) -> float:
    """The largest difference between compiled and Pipeline probabilities over `texts`."""
    predictor = Predictor(stored)
    compiled = np.array([list((p.probabilities or {}).values()) for p in predictor.predict_batch(texts)])
    return float(np.abs(compiled - stored.pipeline.predict_proba(list(texts))).max())


def load_seconds(model_dir: Path) -> tuple[float, int]:
    """Seconds to load, verify and compile the CURRENT model, and its file size in bytes."""
    store = ModelRegistry(model_dir).resolve()
    started = time.perf_counter()
    stored = store.load()
    Predictor(stored)
    elapsed = time.perf_counter() - started
    return elapsed, (store.root / stored.version / "model.skops").stat().st_size


def dict_format_load_seconds(stored: StoredModel) -> tuple[float, int]:
    """The same model saved the plain skops way (vocabulary as a dict): load seconds and file size."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.skops"
        skops.io.dump(stored.pipeline, path, compression=zipfile.ZIP_DEFLATED)
        started = time.perf_counter()
        skops.io.load(path, trusted=TRUSTED_TYPES)
        return time.perf_counter() - started, path.stat().st_size


@dataclass(frozen=True)
class Figures:
    """Every in-process figure of one run."""

    scoring: list[tuple[str, float, float]]
    parity_max_abs_diff: float
    parity_texts: int
    load_seconds: float
    model_bytes: int
    dict_format_load_seconds: float
    dict_format_bytes: int
    texts: Texts


def run(model_dir: Path) -> Figures:
    """Every in-process figure."""
    stored = ModelRegistry(model_dir).resolve().load()
    data = load_bundled()
    texts = bench_texts(data)
    rng = np.random.default_rng(0)
    sample = [data.texts[i] for i in rng.choice(len(data), 3000, replace=False)]
    load, size = load_seconds(model_dir)
    dict_load, dict_size = dict_format_load_seconds(stored)
    return Figures(
        scoring=scoring_table(stored, texts),
        parity_max_abs_diff=parity(stored, sample),
        parity_texts=len(sample),
        load_seconds=load,
        model_bytes=size,
        dict_format_load_seconds=dict_load,
        dict_format_bytes=dict_size,
        texts=texts,
    )


def main() -> int:
    """`python -m bench.inprocess STORE [STORE ...]`: the in-process scoring table of each store's default
    model, side by side (run it pinned to one core: `taskset -c 0`)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("stores", nargs="+", type=Path, help="model store roots (MODEL_DIR)")
    args = parser.parse_args()
    texts = bench_texts(load_bundled())
    for root in args.stores:
        stored = ModelRegistry(root).resolve().load()
        print(f"{root}: {stored.version} ({type(stored.pipeline.steps[0][1]).__name__})")
        for case, compiled, pipeline in scoring_table(stored, texts):
            shown = "-" if pipeline != pipeline else f"{pipeline:.1f}"
            print(f"  {case:32} compiled {compiled:8.1f} µs   Pipeline {shown} µs")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
