"""Several models under one root, the old single-model layout as the default model, and moving it."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.errors import ModelNotFoundError, ModelStoreError
from src.model.trainer import ModelTrainer
from src.store.registry import ModelRegistry
from src.store.store import CURRENT_FILE, ModelStore


def _legacy_store(root: Path, trained: ModelTrainer, versions: int = 2) -> list[str]:
    """The layout before named models: versions and CURRENT straight under the root."""
    store = ModelStore(root)
    return [store.publish(trained.pipeline_, {"classes": trained.classes_}) for _ in range(versions)]


def test_models_publish_under_their_names(tmp_path: Path, trained: ModelTrainer) -> None:
    default = trained.save_model(tmp_path)
    other = trained.save_model(tmp_path, name="reviews")
    registry = ModelRegistry(tmp_path)
    assert registry.names() == ["reviews", "sentiment"]
    assert registry.resolve().root == tmp_path / "sentiment"
    assert registry.resolve().current_version() == default
    assert registry.resolve("reviews").current_version() == other
    assert not (tmp_path / CURRENT_FILE).exists()


def test_the_old_layout_serves_as_the_default_model_until_the_new_one_has_a_version(
    tmp_path: Path, trained: ModelTrainer
) -> None:
    old = _legacy_store(tmp_path, trained)
    registry = ModelRegistry(tmp_path)
    assert registry.names() == ["sentiment"]
    assert registry.resolve().root == tmp_path
    assert registry.resolve().load().version == old[-1]
    new = trained.save_model(tmp_path)  # the next training run publishes in the new layout, which wins
    assert registry.resolve().root == tmp_path / "sentiment"
    assert registry.resolve().current_version() == new
    assert registry.names() == ["sentiment"]
    assert ModelStore(tmp_path).versions() == old  # the old versions stay, and are never taken for models


def test_migrate_moves_every_version_and_current(tmp_path: Path, trained: ModelTrainer) -> None:
    old = _legacy_store(tmp_path, trained, versions=3)
    ModelStore(tmp_path).activate(old[1])
    registry = ModelRegistry(tmp_path)
    moved = registry.migrate()
    assert moved[0] == old[1]  # CURRENT first, so it is never missing from both layouts
    assert sorted(moved) == old
    assert not (tmp_path / CURRENT_FILE).exists()
    assert registry.resolve().root == tmp_path / "sentiment"
    assert registry.resolve().current_version() == old[1]
    assert registry.store().versions() == old
    assert registry.store().load().version == old[1]


def test_migrate_refuses_when_the_new_layout_has_a_model(tmp_path: Path, trained: ModelTrainer) -> None:
    _legacy_store(tmp_path, trained, versions=1)
    trained.save_model(tmp_path)
    with pytest.raises(ModelStoreError, match="already has a CURRENT model"):
        ModelRegistry(tmp_path).migrate()


@pytest.mark.parametrize("name", ["../elsewhere", ".hidden", "a/b", "", "x" * 65, "CURRENT/..", "CURRENT", "current"])
def test_bad_model_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ModelNotFoundError, match="invalid model name"):
        ModelRegistry(tmp_path).store(name)


def test_names_ignore_what_is_not_a_model(tmp_path: Path, trained: ModelTrainer) -> None:
    trained.save_model(tmp_path, name="reviews")
    (tmp_path / ".tmp-crashed").mkdir()
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "bad name!").mkdir()
    assert ModelRegistry(tmp_path).names() == ["reviews"]
    assert ModelRegistry(tmp_path / "absent").names() == []
