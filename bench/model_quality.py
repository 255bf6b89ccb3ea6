"""What each training choice does to quality where the model did not train.

    python -m bench.model_quality            # every configuration, ~15 minutes on 2 cores
    python -m bench.model_quality --only final

Configurations, each adding to the one before: the seed's model (movie reviews and tweets,
unweighted, plain TF-IDF, C=4); the UCI sentences and balanced (source, label) weights; negation
marking and emoticon tokens; the VADER lexicon (plain and negated); C=3, the default. For each it
reports held-out accuracy per source (20% split), leave-one-source-out accuracy on every text source
(a source the configuration does not train on is scored by the model trained on all it has), and
behaviour-suite pass rates. Writes bench/model_quality.md.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

from src.model.behaviour import run_on_pipeline
from src.model.datasets import LEXICON_SOURCE, NEGATED_LEXICON_SOURCE, Dataset, load_bundled
from src.model.trainer import DEFAULT_C, ModelTrainer

SEED_SOURCES = {"imdb", "rotten_tomatoes", "tweets"}
LEXICONS = {LEXICON_SOURCE, NEGATED_LEXICON_SOURCE}


@dataclass(frozen=True)
class Config:
    """One way to train: which sources, whether rows are balanced, the features and C."""

    name: str
    sources_without_lexicons: bool
    seed_sources_only: bool
    balanced: bool
    negation: bool
    C: float


CONFIGS = [
    Config("seed", True, True, False, False, 4.0),
    Config("+uci+balanced", True, False, True, False, 4.0),
    Config("+negation+emoticons", True, False, True, True, 4.0),
    Config("+lexicon", False, False, True, True, 4.0),
    Config("final (C=3)", False, False, True, True, DEFAULT_C),
]


def _select(data: Dataset, config: Config) -> Dataset:
    def keep(source: str) -> bool:
        if source in LEXICONS:
            return not config.sources_without_lexicons
        return source in SEED_SOURCES or not config.seed_sources_only

    return data.where(keep)


def _trainer(config: Config) -> ModelTrainer:
    return ModelTrainer(C=config.C, negation=config.negation, emoticons=config.negation)


def _fit(config: Config, data: Dataset) -> ModelTrainer:
    weights = data.balanced_weights(0.5) if config.balanced else None
    return _trainer(config).train(data.texts, data.labels, sample_weight=weights)


def _accuracy(model: ModelTrainer, data: Dataset) -> float:
    predicted = model.predict(data.texts)
    return sum(p == y for p, y in zip(predicted, data.labels, strict=True)) / len(data)


def evaluate(config: Config, everything: Dataset) -> dict[str, float]:
    """Held-out, leave-one-source-out and behaviour figures of one configuration."""
    started = time.perf_counter()
    data = _select(everything, config)
    train, test = data.split(0.2, 42)
    model = _fit(config, train)
    row: dict[str, float] = {}
    for source in test.source_names:
        row[f"held-out {source}"] = _accuracy(model, test.where(lambda s, source=source: s == source))  # type: ignore[misc]
    behaviour = run_on_pipeline(model.pipeline_)
    assert behaviour is not None
    row["behaviour all"] = behaviour.pass_rate
    for capability, rate in behaviour.by_capability.items():
        row[f"behaviour {capability}"] = rate
    text_sources = [s for s in everything.source_names if s not in everything.training_only]
    trained_on_all = None
    loso = []
    for source in text_sources:
        if source in data.source_names:
            without = _fit(config, data.where(lambda s, source=source: s != source))  # type: ignore[misc]
        else:
            trained_on_all = trained_on_all or _fit(config, data)
            without = trained_on_all
        accuracy = _accuracy(without, everything.where(lambda s, source=source: s == source))  # type: ignore[misc]
        row[f"loso {source}"] = accuracy
        loso.append(accuracy)
    row["loso mean"] = sum(loso) / len(loso)
    row["seconds"] = time.perf_counter() - started
    print(f"{config.name}: {row}", flush=True)
    return row


def main() -> None:
    """Evaluate the configurations and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="evaluate just the configuration whose name starts with this")
    parser.add_argument("--output", type=Path, default=Path("bench/model_quality.md"))
    args = parser.parse_args()
    configs = [c for c in CONFIGS if args.only is None or c.name.startswith(args.only)]
    everything = load_bundled()
    rows = {config.name: evaluate(config, everything) for config in configs}
    metrics = list(dict.fromkeys(metric for row in rows.values() for metric in row))
    lines = [
        "# Model quality by training choice (`python -m bench.model_quality`)",
        "",
        "| metric | " + " | ".join(rows) + " |",
        "|---|" + "---|" * len(rows),
    ]
    for metric in metrics:
        cells = [f"{row[metric]:.3f}" if metric in row else "" for row in rows.values()]
        if metric == "seconds":
            cells = [f"{row[metric]:.0f}" for row in rows.values()]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    args.output.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
