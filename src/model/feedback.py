"""Corrections from production as training data: `python -m src.model.train_script --feedback DIR`.

DIR is a PREDICTION_LOG_DIR: `feedback-*.jsonl` holds corrections (request id, index, label, model),
`predictions-*.jsonl` the records they correct (rotated files, `.1`, `.2`, ..., included). A
correction becomes a training row when the record it names is there, is of this model and kept its
text (not redacted); the row's source is `feedback`, so per-source scores and the
leave-one-source-out table show what the corrections did. Of several corrections of one text, the
latest counts. A line that is not a JSON object is skipped and counted, never fatal: a log cut by a
crash ends in half a line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.errors import DatasetError
from src.model.datasets import Dataset

logger = logging.getLogger(__name__)

FEEDBACK_SOURCE = "feedback"


@dataclass
class FeedbackCounts:
    """What the folder held and what became training rows."""

    corrections: int = 0
    used: int = 0
    unmatched: int = 0  # no record of the request (sampled out, rotated away, another model's)
    redacted: int = 0  # the record holds a hash or a redacted text, not the text
    unknown_labels: dict[str, int] = field(default_factory=dict)
    bad_lines: int = 0

    def format_report(self) -> str:
        """One line for the training log."""
        unknown = sum(self.unknown_labels.values())
        return (
            f"feedback: {self.corrections} corrections, {self.used} used; skipped: {self.unmatched} without their "
            f"prediction record, {self.redacted} redacted, {unknown} with a label the data does not have, "
            f"{self.bad_lines} unreadable lines"
        )


def _lines(folder: Path, prefix: str, counts: FeedbackCounts) -> Iterator[dict[str, Any]]:
    for path in sorted(folder.glob(f"{prefix}-*.jsonl*")):
        with path.open("rb") as handle:
            for raw in handle:
                try:
                    document = json.loads(raw)
                except ValueError:
                    counts.bad_lines += 1
                    continue
                if isinstance(document, dict):
                    yield document
                else:
                    counts.bad_lines += 1


def load_feedback(folder: Path, model: str, labels: set[str]) -> tuple[Dataset, FeedbackCounts]:
    """The corrected texts of `model` in a prediction log folder, labelled by their corrections.

    `labels` are the training data's: a correction to another label is skipped (and counted).
    """
    if not folder.is_dir():
        raise DatasetError(f"--feedback {folder}: not a folder")
    counts = FeedbackCounts()
    corrections: dict[tuple[str, int], tuple[str, str]] = {}  # (request id, index) -> (time, label)
    for document in _lines(folder, "feedback", counts):
        if document.get("model") != model:
            continue
        key = (str(document.get("request_id")), document.get("index", 0))
        if not isinstance(key[1], int) or not isinstance(document.get("label"), str):
            counts.bad_lines += 1
            continue
        counts.corrections += 1
        stamp = str(document.get("time", ""))
        if key not in corrections or stamp >= corrections[key][0]:
            corrections[key] = (stamp, document["label"])
    wanted = {request_id for request_id, _ in corrections}
    texts: dict[tuple[str, int], str | None] = {}
    for document in _lines(folder, "predictions", counts):
        request_id = document.get("request_id")
        if request_id not in wanted or document.get("model") != model or document.get("status") != 200:
            continue
        sent = document.get("texts")
        if not isinstance(sent, list):
            continue
        for index, text in enumerate(sent):
            texts[(str(request_id), index)] = None if document.get("redacted") else str(text)
    rows: list[tuple[str, str]] = []
    for key, (_, label) in sorted(corrections.items()):
        if key not in texts:
            counts.unmatched += 1
        elif texts[key] is None:
            counts.redacted += 1
        elif label not in labels:
            counts.unknown_labels[label] = counts.unknown_labels.get(label, 0) + 1
        else:
            rows.append((str(texts[key]), label))
    counts.used = len(rows)
    dataset = Dataset(
        texts=[text for text, _ in rows],
        labels=[label for _, label in rows],
        sources=[FEEDBACK_SOURCE] * len(rows),
        dataset_id=f"feedback:{folder.name}",
    )
    return dataset, counts
