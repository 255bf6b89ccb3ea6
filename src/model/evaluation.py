"""Evaluation of a classifier on held-out data: overall, per class and per source."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score


@dataclass(frozen=True)
class ClassScores:
    """Precision, recall and F1 of one class, with how many test rows carry it."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class SourceScores:
    """Accuracy and macro-F1 on the test rows of one data source."""

    accuracy: float
    macro_f1: float
    support: int


@dataclass(frozen=True)
class Evaluation:
    """Scores of a model on a test set; `confusion[i][j]` counts true `labels[i]` predicted `labels[j]`."""

    accuracy: float
    macro_f1: float
    labels: list[str]
    per_class: dict[str, ClassScores]
    per_source: dict[str, SourceScores]
    confusion: list[list[int]]
    support: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, stored in the model's metadata."""
        return asdict(self)

    def format_report(self) -> str:
        """The report the training script prints."""
        lines = [
            f"test rows: {self.support}",
            f"accuracy:  {self.accuracy:.4f}",
            f"macro-F1:  {self.macro_f1:.4f}",
            "",
            f"{'class':<16}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}",
        ]
        for label, class_scores in self.per_class.items():
            lines.append(
                f"{label:<16}{class_scores.precision:>10.4f}{class_scores.recall:>10.4f}{class_scores.f1:>10.4f}{class_scores.support:>10}"
            )
        width = max(len(label) for label in self.labels) + 2
        lines += ["", "confusion matrix (rows: true, columns: predicted)"]
        lines.append(" " * 16 + "".join(f"{label:>{width}}" for label in self.labels))
        for label, row in zip(self.labels, self.confusion, strict=True):
            lines.append(f"{label:<16}" + "".join(f"{count:>{width}}" for count in row))
        if len(self.per_source) > 1:
            lines += ["", f"{'source':<20}{'accuracy':>10}{'macro-F1':>10}{'support':>10}"]
            for source, scores in self.per_source.items():
                lines.append(f"{source:<20}{scores.accuracy:>10.4f}{scores.macro_f1:>10.4f}{scores.support:>10}")
        return "\n".join(lines)


def evaluate_predictions(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str], sources: Sequence[str] | None = None
) -> Evaluation:
    """Score predictions against the truth; `labels` fixes the order of classes in the report."""
    labels = list(labels)
    report = classification_report(y_true, y_pred, labels=labels, output_dict=True, zero_division=0.0)
    per_class = {
        label: ClassScores(
            float(report[label]["precision"]),
            float(report[label]["recall"]),
            float(report[label]["f1-score"]),
            int(report[label]["support"]),
        )
        for label in labels
    }
    per_source: dict[str, SourceScores] = {}
    row_sources = list(sources or [])
    for source in sorted(set(row_sources)):
        rows = [i for i, s in enumerate(row_sources) if s == source]
        true = [y_true[i] for i in rows]
        pred = [y_pred[i] for i in rows]
        per_source[source] = SourceScores(
            accuracy=float(accuracy_score(true, pred)),
            macro_f1=float(f1_score(true, pred, labels=labels, average="macro", zero_division=0.0)),
            support=len(rows),
        )
    return Evaluation(
        accuracy=float(accuracy_score(y_true, y_pred)),
        macro_f1=float(report["macro avg"]["f1-score"]),
        labels=labels,
        per_class=per_class,
        per_source=per_source,
        confusion=confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        support=len(y_true),
    )
