"""Training as a library call: a team's own code trains, gates and publishes without the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.cli.train import build_parser, options_of
from src.errors import DatasetError
from src.model.training import TrainingOptions, train_model
from src.store.registry import ModelRegistry
from tests.cli.test_train import write_reviews


def _options(data: Path, **changes: object) -> TrainingOptions:
    return TrainingOptions(data=data, text_column="review", label_column="sentiment", cross_source=False, **changes)  # type: ignore[arg-type]


def test_a_run_publishes_and_returns_its_reports(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "store")
    told: list[str] = []
    outcome = train_model(registry, "reviews", _options(write_reviews(tmp_path / "r.csv")), report=told.append)
    assert outcome.version is not None
    assert outcome.version == registry.store("reviews").current_version()
    assert outcome.reports == told
    assert any("accuracy:" in text for text in told)
    assert any("quality gate" in text for text in told)
    metadata = registry.store("reviews").read_metadata(outcome.version)
    assert metadata["evaluation"]["accuracy"] > 0.9
    assert metadata["weighting"]["lexicon_weight"] == TrainingOptions().lexicon_weight


def test_dry_run_and_if_missing_publish_nothing(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "store")
    data = write_reviews(tmp_path / "r.csv")
    assert train_model(registry, "m", _options(data, dry_run=True)).version is None
    assert registry.store("m").current_version() is None
    first = train_model(registry, "m", _options(data))
    again = train_model(registry, "m", _options(data, if_missing=True))
    assert again.skipped
    assert again.version is None
    assert registry.store("m").current_version() == first.version


def test_bad_options_are_refused_before_any_training(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "store")
    data = write_reviews(tmp_path / "r.csv")
    with pytest.raises(DatasetError, match="--test-size"):
        train_model(registry, "m", _options(data, test_size=1.5))
    with pytest.raises(DatasetError, match="--feedback-keys"):
        train_model(registry, "m", _options(data, feedback=tmp_path))
    assert registry.store("m").current_version() is None


def test_the_command_line_defaults_are_the_librarys() -> None:
    assert options_of(build_parser().parse_args([])) == TrainingOptions()
