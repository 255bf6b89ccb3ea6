from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from src.model.datasets import Dataset
from src.model.trainer import ModelTrainer
from src.serving.model_state import RETRY_FIRST_SECONDS, RETRY_MAX_SECONDS, ModelState, Rejection
from src.serving.predictor import Predictor
from src.store.registry import ModelRegistry
from src.store.store import METADATA_FILE, MODEL_FILE, ModelStore, StoredModel


def _serving(state: ModelState) -> Predictor:
    predictor = state.predictor
    assert predictor is not None, state.not_ready_reason
    return predictor


def _store_with_model(tmp_path: Path, sample: Dataset) -> tuple[ModelStore, ModelTrainer]:
    small = sample.sample(800, random_state=1)
    trainer = ModelTrainer().train(small.texts, small.labels)
    store = ModelRegistry(tmp_path).store()
    trainer.save_model(tmp_path)
    return store, trainer


def test_reload_swaps_to_a_new_version(tmp_path: Path, sample: Dataset) -> None:
    store, trainer = _store_with_model(tmp_path, sample)
    state = ModelState(store)
    assert state.load()
    first = _serving(state)
    assert not asyncio.run(state.reload_if_changed())
    second_version = trainer.save_model(tmp_path)
    assert asyncio.run(state.reload_if_changed())
    assert _serving(state).version == second_version
    assert first.version != second_version  # the old Predictor object is untouched for in-flight requests


def test_a_bad_new_version_is_rejected_once_and_the_old_one_keeps_serving(tmp_path: Path, sample: Dataset) -> None:
    store, trainer = _store_with_model(tmp_path, sample)
    state = ModelState(store)
    state.load()
    serving = _serving(state).version
    bad = trainer.save_model(tmp_path)
    meta = store.root / bad / METADATA_FILE
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "sha256": "0" * 64}))
    assert not asyncio.run(state.reload_if_changed())
    assert _serving(state).version == serving
    assert state.rejected_version == bad
    assert not state.current_changed()  # not retried every poll, only after a growing delay
    good = trainer.save_model(tmp_path)
    assert asyncio.run(state.reload_if_changed())
    assert _serving(state).version == good


def test_model_published_after_start_is_picked_up(tmp_path: Path, sample: Dataset) -> None:
    state = ModelState(ModelRegistry(tmp_path).store())
    assert not state.load()
    assert state.predictor is None
    assert "no version published" in str(state.not_ready_reason)
    _store_with_model(tmp_path, sample)
    assert asyncio.run(state.reload_if_changed())
    assert state.not_ready_reason is None


def test_fallback_store_serves_until_the_main_store_has_a_model(tmp_path: Path, sample: Dataset) -> None:
    bundled, trainer = _store_with_model(tmp_path / "bundled", sample)
    state = ModelState(ModelRegistry(tmp_path / "volume").store(), bundled)
    assert state.load()
    assert _serving(state).version == bundled.current_version()
    published = trainer.save_model(tmp_path / "volume")
    assert asyncio.run(state.reload_if_changed())
    assert _serving(state).version == published


def test_a_rejected_version_is_retried_when_its_files_are_fixed_or_after_a_delay(
    tmp_path: Path, sample: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reproduction: CURRENT named a version whose model.skops was missing (NFS lag); restored, it
    stayed rejected for ever. Now a change of its files, or the backoff delay, brings a retry."""
    store, _ = _store_with_model(tmp_path, sample)
    version = store.current_version()
    model_file = store.root / str(version) / MODEL_FILE
    hidden = model_file.with_name("model.skops.away")
    model_file.rename(hidden)
    state = ModelState(store)
    assert not state.load()
    assert state.rejected_version == version
    assert not state.current_changed()
    hidden.rename(model_file)  # the file arrives
    assert asyncio.run(state.reload_if_changed())
    assert _serving(state).version == version

    # Same version broken again, files unchanged from the failure: retried only after the delay.
    state = ModelState(store)
    monkeypatch.setattr(Predictor, "__init__", _fail_once())
    assert not state.load()
    assert state.rejection is not None
    assert state.rejection.next_delay == RETRY_FIRST_SECONDS
    assert not state.current_changed()
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + RETRY_FIRST_SECONDS + 0.1)
    assert state.current_changed()
    assert asyncio.run(state.reload_if_changed())


def _fail_once() -> Callable[..., None]:
    original = Predictor.__init__
    calls = []

    def init(self: Predictor, stored: StoredModel) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("transient read error")
        original(self, stored)

    return init


def test_backoff_doubles_up_to_a_cap() -> None:
    delays = [Rejection("v", (), failures, 0.0).next_delay for failures in range(1, 10)]
    assert delays[:4] == [RETRY_FIRST_SECONDS * 2**i for i in range(4)]
    assert delays[-1] == RETRY_MAX_SECONDS
