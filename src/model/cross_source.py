"""Leave-one-source-out evaluation: how well a model does on text from a source it never saw.

For each source, a model with the same hyper-parameters is trained on every other source and tested
on that one. In-domain held-out scores cannot show what topic words learnt from one corpus do to
text from elsewhere; this can, so it is the honest estimate of accuracy on a new kind of text.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from joblib import Parallel, delayed

from src.model.datasets import Dataset
from src.model.evaluation import SourceScores, evaluate_predictions

if TYPE_CHECKING:
    from src.model.trainer import ModelTrainer

logger = logging.getLogger(__name__)

Weigher = Callable[[Dataset], list[float] | None]


@dataclass(frozen=True)
class CrossSourceReport:
    """Scores per held-out source, their mean, and what the evaluation cost."""

    per_source: dict[str, SourceScores]
    seconds: float

    @property
    def mean_accuracy(self) -> float:
        """The unweighted mean accuracy over sources: each kind of text counts once."""
        return sum(s.accuracy for s in self.per_source.values()) / len(self.per_source)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for metadata.json."""
        return {
            "per_source": {name: asdict(scores) for name, scores in self.per_source.items()},
            "mean_accuracy": self.mean_accuracy,
            "seconds": round(self.seconds, 1),
        }

    def format_report(self) -> str:
        """The table the training script prints."""
        lines = [f"leave-one-source-out (train on the others, test on this one; {self.seconds:.0f} s)"]
        lines.append(f"{'held-out source':<20}{'accuracy':>10}{'macro-F1':>10}{'rows':>10}")
        for name, scores in self.per_source.items():
            lines.append(f"{name:<20}{scores.accuracy:>10.4f}{scores.macro_f1:>10.4f}{scores.support:>10}")
        lines.append(f"{'mean':<20}{self.mean_accuracy:>10.4f}")
        return "\n".join(lines)


def _score_without(trainer: ModelTrainer, dataset: Dataset, held_out: str, weigh: Weigher) -> SourceScores:
    train = dataset.where(lambda source: source != held_out)
    test = dataset.where(lambda source: source == held_out)
    model = trainer.clone().train(train.texts, train.labels, sample_weight=weigh(train))
    evaluation = evaluate_predictions(test.labels, model.predict(test.texts), model.classes_)
    return SourceScores(evaluation.accuracy, evaluation.macro_f1, evaluation.support)


def leave_one_source_out(
    trainer: ModelTrainer, dataset: Dataset, weigh: Weigher, *, n_jobs: int | None = None
) -> CrossSourceReport | None:
    """Train a copy of `trainer` without each testable source and score it there (`n_jobs` at once).

    None when there are fewer than two testable sources (nothing to leave out), or when leaving a
    source out leaves a single label to learn from.
    """
    sources = [name for name in dataset.source_names if name not in dataset.training_only]
    if len(sources) < 2:
        return None
    if any(
        len({label for label, s in zip(dataset.labels, dataset.sources, strict=True) if s != held_out}) < 2
        for held_out in sources
    ):
        return None
    started = time.perf_counter()
    scores = Parallel(n_jobs=n_jobs)(delayed(_score_without)(trainer, dataset, held_out, weigh) for held_out in sources)
    per_source = dict(zip(sources, scores, strict=True))
    for held_out, result in per_source.items():
        logger.info("left out %s: accuracy %.4f", held_out, result.accuracy)
    return CrossSourceReport(per_source, time.perf_counter() - started)
