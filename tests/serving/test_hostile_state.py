"""What a worker does with bad state and bad models (issue #27, findings 3, 5, 8, 9, 11, 13 and 14):
each degrades one model or one rollout with a reason, never the process."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from src.errors import ModelFailedError
from src.serving.dataplane import DataPlane
from src.serving.drift_window import DriftSettings
from src.serving.inference import InferenceRequest
from src.serving.model_state import ModelState
from src.serving.predictor import Prediction, Predictor
from src.serving.rollout_traffic import Guards, RolloutTraffic
from src.serving.served_models import ServedModels
from src.serving.text_rules import TextLimits
from src.store import rollout as rollouts
from src.store.registry import ModelRegistry
from src.store.rollout import Rollout
from src.store.store import METADATA_FILE
from tests.e2e.servers import ROOT

LIMITS = TextLimits(max_text_length=20_000, max_batch_size=256)


def copy_store(model_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "models"
    shutil.copytree(model_dir, target)
    return target


def test_a_profile_number_out_of_range_leaves_the_model_serving_without_drift(model_dir: Path, tmp_path: Path) -> None:
    """Finding 3: `1e999` in reference_profile.texts (valid JSON, not under the sha256) was an
    OverflowError in every worker at start: all models down, the supervisor backing off."""
    root = copy_store(model_dir, tmp_path)
    store = ModelRegistry(root).store()
    version = store.current_version()
    assert version is not None
    path = store.root / version / METADATA_FILE
    metadata = json.loads(path.read_text())
    assert metadata["reference_profile"] is not None
    path.write_text(
        json.dumps(metadata).replace(f'"texts": {metadata["reference_profile"]["texts"]}', '"texts": 1e999')
    )
    state = ModelState(store, drift=DriftSettings(folder=tmp_path / "metrics"))
    assert state.load()
    assert state.predictor is not None
    assert state.predictor.version == version
    assert state.drift is None
    assert "texts must be a whole number" in str(state.no_drift_reason)


TRUNCATE_AND_PREDICT = """
import os, sys
from pathlib import Path
from tests.serving.test_drift_window import CLASSES, _profile, _texts
from src.serving.drift_window import DriftSettings, DriftWindow
folder = Path(sys.argv[1])
window = DriftWindow("m", "v1", _profile(), CLASSES, DriftSettings(size=500, folder=folder), worker="7")
other = DriftWindow("m", "v1", _profile(), CLASSES, DriftSettings(size=500, folder=folder), worker="8")
window.record(_texts(100, 5))
other.record(_texts(100, 5))
os.truncate(window.path, 0)   # what an operator's cleanup, a full disk or an attacker does
os.truncate(other.path, 17)   # cut mid-record
window.record(_texts(300, 5))
print(sum(window.counts()["label"]))
"""


def test_truncated_drift_window_files_never_kill_the_worker(tmp_path: Path) -> None:
    """Finding 5: a window file cut short under its memory map killed the worker with SIGBUS at its
    next prediction. Windows are written with pwrite and read whatever their length now."""
    result = subprocess.run(
        [sys.executable, "-c", TRUNCATE_AND_PREDICT, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr  # -7 (SIGBUS) before
    assert int(result.stdout) == 400 + 1  # this worker's ring from memory; one whole record of the other


class RaisesOnNumbers(Predictor):
    """A model that raises on some texts, as isotonic calibration with out_of_bounds='raise' does."""

    def predict_batch(self, texts: Sequence[str]) -> list[Prediction]:
        if any(any(c.isdigit() for c in text) for text in texts):
            raise ValueError("X out of bounds")
        return super().predict_batch(texts)


def test_one_failing_text_is_that_texts_error(model_dir: Path) -> None:
    """Finding 9: one such text failed the whole batch with a bare 500 (INTERNAL on gRPC)."""
    models = ServedModels([ModelRegistry(model_dir)], default_name="sentiment", max_models=8)
    models.load_all()
    state = models.default
    assert state.predictor is not None
    state.predictor = RaisesOnNumbers(ModelRegistry(model_dir).store().load())
    plane = DataPlane(models, LIMITS)
    with pytest.raises(ModelFailedError) as raised:
        asyncio.run(plane.infer(InferenceRequest(["a fine film", "a fine film", "2 stars", "4 stars"])))
    assert raised.value.text_index == 2  # each adapter places it: ("body", "texts", 2) on /predict/batch
    assert raised.value.status_code == 422
    assert "failed on this text (ValueError)" in raised.value.message
    assert "out of bounds" not in raised.value.message  # the model's own words may repeat the text


def rollout_plane(model_dir: Path, candidate: Predictor, mode: str, percent: float, **guards: Any) -> DataPlane:
    models = ServedModels([ModelRegistry(model_dir)], default_name="sentiment", max_models=8)
    models.load_all()
    state = models.default
    assert state.predictor is not None
    candidate.version = "candidate-v2"
    rollout = Rollout("r1", "candidate-v2", state.predictor.version, mode, percent)
    trips: list[tuple[str, str]] = []
    state.traffic = RolloutTraffic(
        "sentiment", rollout, candidate, Guards(**guards), lambda _, guard, reason: trips.append((guard, reason))
    )
    plane = DataPlane(models, LIMITS)
    plane.trips = trips  # type: ignore[attr-defined]
    return plane


def test_a_keyless_canary_is_a_share_of_requests(model_dir: Path) -> None:
    """Finding 13: 3,000 requests from one address at --canary 10 never reached the candidate."""
    stored = ModelRegistry(model_dir).store().load()
    plane = rollout_plane(model_dir, Predictor(stored), "canary", 10, min_requests=10_000)

    async def send() -> list[str]:
        return [(await plane.infer(InferenceRequest(["a fine film"]))).model_version for _ in range(3000)]

    versions = asyncio.run(send())
    share = versions.count("candidate-v2") / len(versions)
    assert 0.06 < share < 0.14  # 10% of requests (one standard deviation is 0.0055)


def test_a_client_cannot_fool_the_latency_guard_with_long_and_short_texts(model_dir: Path) -> None:
    """Finding 14: a key on the candidate sending long texts, one-word texts to CURRENT, made a same-cost
    retrain look 6.66x slower in about 30 requests. The guard now compares both on the same texts."""
    stored = ModelRegistry(model_dir).store().load()
    plane = rollout_plane(model_dir, Predictor(stored), "canary", 50, min_requests=20)
    traffic = plane.models.default.traffic
    assert traffic is not None

    candidate_keys = [f"k{i}" for i in range(200) if traffic.answers(f"k{i}")][:5]
    current_keys = [f"k{i}" for i in range(200) if not traffic.answers(f"k{i}")][:5]

    async def attack() -> None:
        for i in range(60):
            await plane.infer(InferenceRequest(["a long review " * 600], client_key=candidate_keys[i % 5]))
            await plane.infer(InferenceRequest(["ok"], client_key=current_keys[i % 5]))
            assert traffic.settle()

    asyncio.run(attack())
    assert plane.trips == []  # type: ignore[attr-defined]
    ratio = traffic.figures.latency_ratio()
    assert ratio is not None
    assert 0.3 < ratio < 3.0, ratio


class Slow(Predictor):
    def predict_batch(self, texts: Sequence[str]) -> list[Prediction]:
        time.sleep(0.05)
        return super().predict_batch(texts)


def test_comparisons_run_off_the_event_loop_behind_a_bounded_queue(model_dir: Path) -> None:
    """Finding 8: shadow and canary comparisons ran on the event loop, so /health/live took 4.2 s during
    a --shadow 100 rollout. Now they run in the rollout's own thread; a full queue skips, counted."""
    stored = ModelRegistry(model_dir).store().load()
    plane = rollout_plane(model_dir, Slow(stored), "shadow", 100, min_requests=10_000, max_latency_ratio=1e9)
    traffic = plane.models.default.traffic
    assert traffic is not None
    threads: list[str] = []
    original = traffic.shadow

    def shadow(*args: object) -> None:
        threads.append(threading.current_thread().name)
        original(*args)  # type: ignore[arg-type]

    traffic.shadow = shadow  # type: ignore[method-assign,assignment]

    async def burst() -> float:
        started = time.perf_counter()
        for _ in range(200):
            await plane.infer(InferenceRequest(["a fine film"]))
        return time.perf_counter() - started

    seconds = asyncio.run(burst())
    assert seconds < 2.0  # 200 shadowed requests would take 10 s if the loop scored the candidate
    assert traffic.settle(30)
    assert set(threads) == {"rollout-sentiment"}
    assert len(threads) < 200  # the queue was full for most: skipped, not queued without bound


class Hangs(Predictor):
    def predict_batch(self, texts: Sequence[str]) -> list[Prediction]:
        time.sleep(0.7)
        return super().predict_batch(texts)


def test_a_candidate_over_the_scoring_time_bound_is_aborted_with_the_reason(model_dir: Path) -> None:
    """Finding 2: a shadow candidate that stalled scoring was never aborted. One request over
    ROLLOUT_MAX_SECONDS_PER_TEXT aborts it, whatever ROLLOUT_MIN_REQUESTS says."""
    stored = ModelRegistry(model_dir).store().load()
    plane = rollout_plane(model_dir, Hangs(stored), "shadow", 100, min_requests=10_000, max_seconds_per_text=0.5)
    traffic = plane.models.default.traffic
    assert traffic is not None
    asyncio.run(plane.infer(InferenceRequest(["a fine film"])))
    traffic.settle(10)
    assert [guard for guard, _ in plane.trips] == ["scoring_time"]  # type: ignore[attr-defined]
    assert "s per text on one request, over 0.5 s" in plane.trips[0][1]  # type: ignore[attr-defined]


def test_workers_stop_using_a_candidate_when_rollout_becomes_unreadable(model_dir: Path, tmp_path: Path) -> None:
    """Finding 11: with a corrupt ROLLOUT the candidate kept answering its share."""
    root = copy_store(model_dir, tmp_path)
    registry = ModelRegistry(root)
    store = registry.store()
    first = store.current_version()
    assert first is not None
    second = store.publish(store.load(first).pipeline, {})
    store.activate(first)
    rollouts.start(store, second, "canary", 100)
    state = ModelState(*registry.stores(), name="sentiment")
    assert state.load()
    asyncio.run(state.follow_rollout())
    traffic = state.traffic
    assert traffic is not None
    assert traffic.candidate.version == second
    (store.root / rollouts.ROLLOUT_FILE).write_bytes(b'{"id": "r1", "candidate": ')
    asyncio.run(state.follow_rollout())
    assert traffic.stopped
    assert state.traffic is None
    assert "ROLLOUT is not valid JSON" in str(state.rollout_error)
