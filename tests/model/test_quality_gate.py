"""The quality gate: a worse model is refused (exit 3, nothing published); a better one is published."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from src import exit_codes
from src.cli.train import main
from src.model.datasets import Dataset
from src.store.registry import ModelRegistry

QUICK = ["--no-tune", "--no-cross-source"]


def write_csv(path: Path, texts: list[str], labels: list[str]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, labels, strict=True))
    return path


@pytest.fixture(scope="module")
def shuffled_csv(tmp_path_factory: pytest.TempPathFactory, bundled: Dataset) -> Path:
    """Real texts whose labels were shuffled: a training run that learns nothing."""
    part = bundled.where(lambda source: source not in bundled.training_only).sample(4000, random_state=3)
    labels = list(part.labels)
    random.Random(5).shuffle(labels)
    return write_csv(tmp_path_factory.mktemp("data") / "shuffled.csv", part.texts, labels)


def test_worse_is_refused_better_is_published_and_force_overrides(
    tmp_path: Path, shuffled_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ModelRegistry(tmp_path / "store").store()
    args = ["--model-dir", str(tmp_path / "store"), *QUICK]

    assert main(["--sample", "3000", *args]) == 0
    first = store.current_version()
    first_gate = store.read_metadata(str(first))["quality_gate"]
    assert first_gate["passed"] is True
    assert "no CURRENT model" in first_gate["reason"]
    capsys.readouterr()

    assert main(["--data", str(shuffled_csv), *args]) == exit_codes.GATE_REFUSED
    captured = capsys.readouterr()
    assert "quality gate: REFUSED" in captured.out
    assert captured.err.startswith("error: refused by the quality gate, nothing published: ")
    assert "below CURRENT's" in captured.err
    assert store.versions() == [first]
    assert store.current_version() == first

    assert main(["--sample", "12000", *args]) == 0
    better = store.current_version()
    assert better != first
    gate = store.read_metadata(str(better))["quality_gate"]
    assert gate["passed"] is True
    assert gate["forced"] is False
    assert gate["current"]["version"] == first
    assert gate["candidate"]["macro_f1"] >= gate["current"]["macro_f1"] - gate["tolerances"]["macro_f1"]
    capsys.readouterr()

    assert main(["--data", str(shuffled_csv), *args, "--force"]) == 0
    forced = store.read_metadata(str(store.current_version()))["quality_gate"]
    assert forced["forced"] is True
    assert forced["reason"].startswith("--force overrides: ")
    assert "below CURRENT's" in forced["reason"]


def test_a_model_with_other_labels_is_not_comparable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store_dir = tmp_path / "store"
    assert main(["--sample", "2000", "--model-dir", str(store_dir), *QUICK]) == 0
    topics = write_csv(
        tmp_path / "topics.csv",
        [f"{word} news item {i}" for i in range(60) for word in ("football", "election")],
        ["sport", "politics"] * 60,
    )
    assert main(["--data", str(topics), "--model-dir", str(store_dir), *QUICK]) == exit_codes.GATE_REFUSED
    assert "predicts other labels (negative, positive): not comparable" in capsys.readouterr().err
    # Under a name of its own it is another model, gated against nothing but itself.
    assert main(["--data", str(topics), "--model-dir", str(store_dir), "--name", "topics", *QUICK]) == 0
    assert ModelRegistry(store_dir).names() == ["sentiment", "topics"]


def test_an_unloadable_current_model_does_not_block_a_new_one(tmp_path: Path) -> None:
    store = ModelRegistry(tmp_path / "store").store()
    assert main(["--sample", "2000", "--model-dir", str(tmp_path / "store"), *QUICK]) == 0
    broken = store.current_version()
    (store.root / str(broken) / "model.skops").write_bytes(b"not a model")
    assert main(["--sample", "2000", "--model-dir", str(tmp_path / "store"), *QUICK]) == 0
    gate = store.read_metadata(str(store.current_version()))["quality_gate"]
    assert "CURRENT cannot be loaded" in gate["reason"]
