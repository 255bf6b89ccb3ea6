"""A rollout inside one worker: a failing candidate never fails a request and trips its guard; a
slow one trips the latency guard; a sound one stays."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from src.serving.dataplane import DataPlane
from src.serving.inference import InferenceRequest
from src.serving.predictor import Prediction, Predictor
from src.serving.rollout_traffic import Guards, RolloutTraffic
from src.serving.served_models import ServedModels
from src.serving.text_rules import TextLimits
from src.store.registry import ModelRegistry
from src.store.rollout import Rollout

LIMITS = TextLimits(max_text_length=500, max_batch_size=8)


class Broken(Predictor):
    """A candidate whose scoring raises on every text."""

    def predict_batch(self, texts: Sequence[str]) -> list[Prediction]:
        raise RuntimeError("the candidate's vectorizer exploded")


class Slow(Predictor):
    """A candidate that takes 5 ms more per batch."""

    def predict_batch(self, texts: Sequence[str]) -> list[Prediction]:
        time.sleep(0.005)
        return super().predict_batch(texts)


def with_candidate(
    model_dir: Path, kind: type[Predictor], mode: str, percent: float = 100.0
) -> tuple[DataPlane, list[tuple[str, str]]]:
    models = ServedModels([ModelRegistry(model_dir)], default_name="sentiment", max_models=8)
    models.load_all()
    state = models.default
    assert state.predictor is not None
    stored = ModelRegistry(model_dir).store().load()
    candidate = kind(stored)
    candidate.version = "candidate-v2"
    rollout = Rollout("abc123", "candidate-v2", state.predictor.version, mode, percent)
    trips: list[tuple[str, str]] = []
    state.traffic = RolloutTraffic(
        "sentiment", rollout, candidate, Guards(min_requests=20), lambda _, guard, reason: trips.append((guard, reason))
    )
    return DataPlane(models, LIMITS), trips


def key(number: int) -> str:
    return f"k{number}"


async def many(plane: DataPlane, count: int) -> list[str]:
    versions = []
    for i in range(count):
        inference = await plane.infer(InferenceRequest([f"a fine film number {i}"], client_key=key(i)))
        versions.append(inference.model_version)
        traffic = plane.models.default.traffic
        if traffic is not None:
            assert traffic.settle()  # the comparisons run in their own thread
    return versions


def test_a_failing_canary_is_answered_by_current_and_trips_the_error_guard(model_dir: Path) -> None:
    plane, trips = with_candidate(model_dir, Broken, "canary")
    current = plane.resolve()[1].version
    versions = asyncio.run(many(plane, 40))
    assert set(versions) == {current}  # every request answered, by CURRENT
    assert [guard for guard, _ in trips] == ["error_rate"]
    assert "candidate error rate 1.000" in trips[0][1]
    traffic = plane.models.default.traffic
    assert traffic is not None
    assert traffic.stopped  # the worker stopped using it at once
    assert traffic.figures.candidate_errors == 20  # judged as soon as it had failed on ROLLOUT_MIN_REQUESTS


def test_a_slow_shadow_trips_the_latency_guard_without_slowing_clients(model_dir: Path) -> None:
    plane, trips = with_candidate(model_dir, Slow, "shadow")
    current = plane.resolve()[1].version
    assert set(asyncio.run(many(plane, 40))) == {current}
    assert [guard for guard, _ in trips] == ["latency_ratio"]


def test_a_sound_candidate_keeps_running(model_dir: Path) -> None:
    plane, trips = with_candidate(model_dir, Predictor, "canary", 50.0)
    versions = asyncio.run(many(plane, 60))
    assert set(versions) == {plane.resolve()[1].version, "candidate-v2"}
    assert trips == []
    traffic = plane.models.default.traffic
    assert traffic is not None
    assert traffic.figures.disagreement() == pytest.approx(0.0)
    assert traffic.figures.compared == traffic.figures.candidate_texts
