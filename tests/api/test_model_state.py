from __future__ import annotations

import asyncio
import json
from pathlib import Path

from src.api.model_state import ModelState
from src.model.datasets import Dataset
from src.model.store import METADATA_FILE, ModelStore
from src.model.trainer import ModelTrainer


def _store_with_model(tmp_path: Path, sample: Dataset) -> tuple[ModelStore, ModelTrainer]:
    small = sample.sample(800, random_state=1)
    trainer = ModelTrainer().train(small.texts, small.labels)
    store = ModelStore(tmp_path)
    trainer.save_model(tmp_path)
    return store, trainer


def test_reload_swaps_to_a_new_version(tmp_path: Path, sample: Dataset) -> None:
    store, trainer = _store_with_model(tmp_path, sample)
    state = ModelState(store)
    assert state.load()
    first = state.require()
    assert not asyncio.run(state.reload_if_changed())
    second_version = trainer.save_model(tmp_path)
    assert asyncio.run(state.reload_if_changed())
    assert state.require().version == second_version
    assert first.version != second_version  # the old Predictor object is untouched for in-flight requests


def test_a_bad_new_version_is_rejected_once_and_the_old_one_keeps_serving(tmp_path: Path, sample: Dataset) -> None:
    store, trainer = _store_with_model(tmp_path, sample)
    state = ModelState(store)
    state.load()
    serving = state.require().version
    bad = trainer.save_model(tmp_path)
    meta = tmp_path / bad / METADATA_FILE
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "sha256": "0" * 64}))
    assert not asyncio.run(state.reload_if_changed())
    assert state.require().version == serving
    assert state.rejected_version == bad
    assert not state.current_changed()  # not retried every poll
    good = trainer.save_model(tmp_path)
    assert asyncio.run(state.reload_if_changed())
    assert state.require().version == good


def test_model_published_after_start_is_picked_up(tmp_path: Path, sample: Dataset) -> None:
    state = ModelState(ModelStore(tmp_path))
    assert not state.load()
    assert state.predictor is None
    assert "no model" in str(state.not_ready_reason)
    _store_with_model(tmp_path, sample)
    assert asyncio.run(state.reload_if_changed())
    assert state.not_ready_reason is None


def test_fallback_store_serves_until_the_main_store_has_a_model(tmp_path: Path, sample: Dataset) -> None:
    bundled, trainer = _store_with_model(tmp_path / "bundled", sample)
    state = ModelState(ModelStore(tmp_path / "volume"), bundled)
    assert state.load()
    assert state.require().version == bundled.current_version()
    published = trainer.save_model(tmp_path / "volume")
    assert asyncio.run(state.reload_if_changed())
    assert state.require().version == published
