"""The drift window: every worker's newest texts merged by time, per served version, and its gauges."""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from src.drift.profile import ReferenceProfile
from src.drift.statistics import DriftThresholds
from src.serving.drift_window import DriftSettings, DriftWindow
from src.serving.predictor import Prediction, Predictor
from src.store.registry import ModelRegistry

CLASSES = ["negative", "positive"]


def _profile() -> ReferenceProfile:
    rng = random.Random(0)
    return ReferenceProfile.build(
        lengths=[rng.randint(50, 500) for _ in range(2000)],
        oov=[rng.random() * 0.1 for _ in range(2000)],
        scores=[rng.uniform(0.6, 1) for _ in range(2000)],
        labels=[rng.choice(CLASSES) for _ in range(2000)],
        classes=CLASSES,
        source="test",
    )


def _texts(count: int, words: int) -> list[Prediction]:
    return [Prediction("positive", {"negative": 0.2, "positive": 0.8}, words, 1) for _ in range(count)]


def test_the_window_keeps_the_newest_texts_of_every_worker(tmp_path: Path) -> None:
    settings = DriftSettings(size=500, folder=tmp_path)
    first = DriftWindow("m", "v1", _profile(), CLASSES, settings, worker="101")
    second = DriftWindow("m", "v1", _profile(), CLASSES, settings, worker="102")
    first.record(_texts(400, 400))  # older: long texts
    time.sleep(0.01)
    second.record(_texts(300, 3))  # newer: short texts
    counts = first.counts()
    assert sum(counts["label"]) == 500
    short = first.profile.bins(3, 0.0, 0.8, "positive")[0]
    assert counts["length"][short] == 300  # all of the newest worker's texts
    assert sum(counts["length"]) - counts["length"][short] == 200  # and the newest 200 of the other's
    assert second.counts() == counts  # the same view from either worker
    first.close()
    assert sum(second.counts()["label"]) == 300
    assert not (tmp_path / "drift" / "m" / "v1" / "101.window").exists()


def test_a_ring_wraps_at_the_window_size() -> None:
    window = DriftWindow("m", "v1", _profile(), CLASSES, DriftSettings(size=100))
    window.record(_texts(250, 3))
    assert sum(window.counts()["label"]) == 100
    report = window.report()
    assert report.texts == 100
    assert report.signals["length"].drifting


def _predictor(model_dir: Path, metadata: Mapping[str, object]) -> Predictor:
    stored = ModelRegistry(model_dir).store().load()
    return Predictor(dataclasses.replace(stored, metadata={**stored.metadata, **metadata}))


def test_a_version_without_a_usable_profile_has_no_window_and_says_why(model_dir: Path) -> None:
    settings = DriftSettings()
    window, reason = settings.window("sentiment", _predictor(model_dir, {"reference_profile": None}))
    assert window is None
    assert reason is not None
    assert "no reference profile" in reason
    broken = {"reference_profile": {"texts": 3}}
    window, reason = settings.window("sentiment", _predictor(model_dir, broken))
    assert window is None
    assert reason is not None
    assert "malformed" in reason


@pytest.mark.parametrize("min_texts", [1, 10_000])
def test_the_minimum_decides_between_collecting_and_a_verdict(min_texts: int) -> None:
    settings = DriftSettings(size=500, thresholds=DriftThresholds(min_texts=min_texts))
    window = DriftWindow("m", "v1", _profile(), CLASSES, settings)
    window.record(_texts(100, 2))
    assert window.report().status == ("drifting" if min_texts == 1 else "collecting")
