"""Corrections joined with the records they correct; what cannot be used is skipped and counted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from src.errors import DatasetError
from src.model.feedback import FEEDBACK_SOURCE, load_feedback

LABELS = {"negative", "positive"}


def _write(path: Path, documents: list[dict[str, Any]], tail: str = "") -> None:
    path.write_text("".join(json.dumps(d) + "\n" for d in documents) + tail)


def _prediction(request_id: str, texts: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "kind": "prediction",
        "request_id": request_id,
        "model": "sentiment",
        "status": 200,
        "texts": texts,
        **extra,
    }


def _correction(request_id: str, label: str, time: str, index: int = 0, model: str = "sentiment") -> dict[str, Any]:
    return {"kind": "feedback", "request_id": request_id, "index": index, "label": label, "model": model, "time": time}


def test_corrections_become_rows_of_their_own_source(tmp_path: Path) -> None:
    _write(tmp_path / "predictions-a-1.jsonl", [_prediction("r1", ["not good at all"])])
    _write(tmp_path / "predictions-b-2.jsonl.1", [_prediction("r2", ["first", "a dull film"])])  # rotated, a batch
    _write(tmp_path / "predictions-b-2.jsonl", [_prediction("r3", ["secret"], redacted=True)], tail='{"kind": "predi')
    _write(
        tmp_path / "feedback-a-1.jsonl",
        [
            _correction("r1", "positive", "2026-11-29T10:00:00Z"),
            _correction("r1", "negative", "2026-11-29T11:00:00Z"),  # the latest counts
            _correction("r2", "negative", "2026-11-29T10:00:00Z", index=1),
            _correction("r3", "negative", "2026-11-29T10:00:00Z"),  # redacted
            _correction("r4", "negative", "2026-11-29T10:00:00Z"),  # no record
            _correction("r2", "neutral", "2026-11-29T10:00:00Z"),  # a label the data lacks
            _correction("r9", "negative", "2026-11-29T10:00:00Z", model="spam"),  # another model's
        ],
    )
    dataset, counts = load_feedback(tmp_path, "sentiment", LABELS)
    assert sorted(zip(dataset.texts, dataset.labels, strict=True)) == [
        ("a dull film", "negative"),
        ("not good at all", "negative"),
    ]
    assert set(dataset.sources) == {FEEDBACK_SOURCE}
    assert counts.corrections == 6
    assert counts.used == 2
    assert counts.redacted == 1
    assert counts.unmatched == 1
    assert counts.unknown_labels == {"neutral": 1}
    assert counts.bad_lines == 1
    assert "2 used" in counts.format_report()


def test_a_missing_folder_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a folder"):
        load_feedback(tmp_path / "nowhere", "sentiment", LABELS)
