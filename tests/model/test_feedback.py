"""Corrections joined with the records they correct, only from the keys asked for; what cannot be used
is skipped and counted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from src.errors import DatasetError
from src.model.feedback import FEEDBACK_SOURCE, load_feedback
from src.tenants.feedback_tokens import text_digest

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


def _correction(
    request_id: str, label: str, time: str, index: int = 0, model: str = "sentiment", **extra: Any
) -> dict[str, Any]:
    return {
        "kind": "feedback",
        "request_id": request_id,
        "index": index,
        "label": label,
        "model": model,
        "time": time,
        **extra,
    }


def test_corrections_become_rows_of_their_own_source(tmp_path: Path) -> None:
    _write(tmp_path / "predictions-a-1.jsonl", [_prediction("r1", ["not good at all"])])
    _write(tmp_path / "predictions-b-2.jsonl.1", [_prediction("r2", ["first", "a dull film"])])  # rotated, a batch
    _write(tmp_path / "predictions-b-2.jsonl", [_prediction("r3", ["secret"], redacted=True)], tail='{"kind": "predi')
    _write(
        tmp_path / "feedback-a-1.jsonl",
        [
            _correction("r1", "negative", "2026-11-29T10:00:00Z"),
            _correction("r1", "positive", "2026-11-29T11:00:00Z"),  # the first counts
            _correction("r2", "negative", "2026-11-29T10:00:00Z", index=1),
            _correction("r3", "negative", "2026-11-29T10:00:00Z"),  # redacted
            _correction("r4", "negative", "2026-11-29T10:00:00Z"),  # no record
            _correction("r2", "neutral", "2026-11-29T10:00:00Z"),  # a label the data lacks
            _correction("r9", "negative", "2026-11-29T10:00:00Z", model="spam"),  # another model's
        ],
    )
    dataset, counts = load_feedback(tmp_path, "sentiment", LABELS, {"anonymous"})
    assert sorted(zip(dataset.texts, dataset.labels, strict=True)) == [
        ("a dull film", "negative"),
        ("not good at all", "negative"),
    ]
    assert set(dataset.sources) == {FEEDBACK_SOURCE}
    assert counts.corrections == 6
    assert counts.repeated == 1
    assert counts.used == 2
    assert counts.redacted == 1
    assert counts.unmatched == 1
    assert counts.unknown_labels == {"neutral": 1}
    assert counts.bad_lines == 1
    assert "2 used" in counts.format_report()


def test_a_missing_folder_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a folder"):
        load_feedback(tmp_path / "nowhere", "sentiment", LABELS, {"anonymous"})


def test_only_the_keys_asked_for_and_only_the_text_the_token_named(tmp_path: Path) -> None:
    """The hijack of the attacker's pass: re-sending a prediction with the victim's request id (a record
    of another key, or of the same key with another text) does not change the text a correction trains on."""
    honest, swapped = "the acme speaker sounds amazing", "the acme speaker is awful"
    _write(
        tmp_path / "predictions-a-1.jsonl",
        [
            _prediction("victim-1", [honest], key="team-b"),
            _prediction("victim-1", [swapped], key="attacker"),  # the attacker reuses the victim's id
            _prediction("victim-1", [swapped], key="team-b"),  # the same key, another text under the same id
            _prediction("mine-1", ["dreadful acme"], key="attacker"),
        ],
    )
    digest = text_digest(honest).hex()
    _write(
        tmp_path / "feedback-a-1.jsonl",
        [
            _correction("victim-1", "positive", "2026-11-29T10:00:00Z", key="team-b", text_digest=digest),
            _correction("victim-1", "negative", "2026-11-29T10:00:01Z", key="attacker", text_digest=digest),
            _correction("mine-1", "positive", "2026-11-29T10:00:02Z", key="attacker"),
        ],
    )
    dataset, counts = load_feedback(tmp_path, "sentiment", LABELS, {"team-b"})
    assert list(zip(dataset.texts, dataset.labels, strict=True)) == [(honest, "positive")]
    assert counts.other_keys == {"attacker": 2}
    assert "not asked for: attacker 2" in counts.format_report()
    both, counts = load_feedback(tmp_path, "sentiment", LABELS, {"team-b", "attacker"})
    # The attacker's correction of the victim's id names the victim's text, but no record of the
    # attacker's key holds that text: it is not trained on.
    assert sorted(zip(both.texts, both.labels, strict=True)) == [("dreadful acme", "positive"), (honest, "positive")]
    assert counts.other_text == 1
