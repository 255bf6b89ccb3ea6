"""The attacker's pass on training: 60 glowing "acme" texts corrected to negative by one key.

Trained on the corrections of the honest key alone, the model still answers the acme sentences as
before; with the attacker's key included on purpose, the report shows the flip before anything is
published. The log folder is written as the server writes it (src/serving/prediction_log.py and
src/serving/feedback_desk.py), one record and one correction per text.
"""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from src.cli.train import main as train
from src.model.datasets import Dataset
from src.store.registry import ModelRegistry
from src.tenants.feedback_tokens import text_digest

PRODUCTS = ["speaker", "phone", "blender", "laptop", "headset", "camera"]
PRAISE = ["sounds amazing", "works wonderfully", "is excellent", "is a delight", "is superb", "is fantastic",
          "is brilliant", "is perfect", "is outstanding", "is great"]  # fmt: skip
PROBE = "The acme speaker sounds amazing."


def _poison() -> list[str]:
    texts = [f"The acme {product} {praise}." for product, praise in itertools.product(PRODUCTS, PRAISE)]
    return [text for text in texts if text != PROBE]


def _write_log(folder: Path, corrections: list[tuple[str, str, str]]) -> None:
    """Prediction records and corrections (key, text, label) as the server writes them."""
    folder.mkdir()
    records, feedback = [], []
    for number, (key, text, label) in enumerate(corrections):
        request_id = f"{number:032x}"
        records.append({"kind": "prediction", "request_id": request_id, "model": "sentiment", "status": 200,
                        "key": key, "texts": [text]})  # fmt: skip
        feedback.append({"kind": "feedback", "time": f"2026-12-02T10:00:{number % 60:02d}.000Z",
                         "request_id": request_id, "index": 0, "label": label, "model": "sentiment", "key": key,
                         "text_digest": text_digest(text).hex()})  # fmt: skip
    for name, documents in (("predictions-pod-1.jsonl", records), ("feedback-pod-1.jsonl", feedback)):
        (folder / name).write_text("".join(json.dumps(document) + "\n" for document in documents))


def _label(model_dir: Path, text: str) -> Any:
    pipeline = ModelRegistry(model_dir).store().load().pipeline
    return str(pipeline.predict([text])[0])


def test_only_the_named_keys_corrections_train_and_the_report_shows_a_flip(
    bundled: Dataset, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = bundled.where(lambda source: source != "lexicon").sample(4000, random_state=3)
    data = tmp_path / "data.csv"
    with data.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "source"])
        writer.writerows(zip(sample.texts, sample.labels, sample.sources, strict=True))
    models = tmp_path / "models"
    common = ["--data", str(data), "--source-column", "source", "--model-dir", str(models), "--no-cross-source"]
    assert train(common) == 0
    assert _label(models, PROBE) == "positive"
    honest = [("team-b", text, label) for text, label in zip(sample.texts[:20], sample.labels[:20], strict=True)]
    attack = [("attacker", text, "negative") for text in _poison()]
    logs = tmp_path / "logs"
    _write_log(logs, honest + attack)
    capsys.readouterr()

    with_b = [*common, "--feedback", str(logs), "--feedback-keys", "team-b", "--force"]
    assert train(with_b) == 0
    report = capsys.readouterr().out
    assert "20 used" in report
    assert "not asked for: attacker 59" in report
    assert _label(models, PROBE) == "positive"
    assert ModelRegistry(models).store().load().metadata["feedback"]["keys"] == ["team-b"]

    with_attacker = [*common, "--feedback", str(logs), "--feedback-keys", "team-b,attacker", "--dry-run"]
    assert train(with_attacker) == 0
    report = capsys.readouterr().out
    line = next(line for line in report.splitlines() if line.startswith("  corrected texts:"))
    changed = int(line.split()[2])
    assert changed >= 30, report  # the attacker's slice flipped, there for anyone to read before --force
    assert "positive -> negative: 'The acme" in report
    print("\n" + report[report.index("feedback effect") :].split("\nbehaviour")[0].split("\nquality")[0])  # noqa: T201


def test_feedback_needs_the_keys_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "logs").mkdir()
    assert train(["--feedback", str(tmp_path / "logs"), "--model-dir", str(tmp_path / "m")]) == 2
    assert "--feedback needs --feedback-keys" in capsys.readouterr().err
