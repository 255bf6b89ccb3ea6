"""A trained version's reference profile: measured on held-out texts, at most MAX_REFERENCE_TEXTS."""

from __future__ import annotations

from pathlib import Path

from src.drift.profile import ReferenceProfile
from src.model.datasets import Dataset
from src.model.reference import MAX_REFERENCE_TEXTS, reference_profile
from src.model.trainer import ModelTrainer
from src.store.registry import ModelRegistry


def test_the_profile_is_measured_on_at_most_the_cap(trained: ModelTrainer, sample: Dataset) -> None:
    texts = sample.texts[: MAX_REFERENCE_TEXTS + 500]
    profile = reference_profile(trained.pipeline_, texts, "somewhere")
    assert profile.texts == MAX_REFERENCE_TEXTS
    assert profile.source == f"somewhere ({MAX_REFERENCE_TEXTS} texts)"
    assert profile.classes == ("negative", "positive")
    assert reference_profile(trained.pipeline_, texts, "somewhere") == profile  # the same texts chosen again


def test_a_published_version_carries_its_profile(model_dir: Path) -> None:
    stored = ModelRegistry(model_dir).store().load()
    profile = ReferenceProfile.from_dict(stored.metadata["reference_profile"], ["negative", "positive"])
    assert profile.texts == 2000
