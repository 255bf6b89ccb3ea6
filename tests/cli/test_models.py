"""The store command line: list, promote, roll back, prune and migrate, on real stores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.cli.models import main
from src.model.trainer import ModelTrainer
from src.store.registry import ModelRegistry
from src.store.store import METADATA_FILE, ModelStore


@pytest.fixture
def root(tmp_path: Path, trained: ModelTrainer) -> Path:
    for _ in range(3):
        trained.save_model(tmp_path)
    trained.save_model(tmp_path, name="reviews")
    return tmp_path


def _cli(root: Path, *args: str) -> int:
    return main(["--model-dir", str(root), *args])


def test_list_shows_every_model_and_marks_current(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(root, "list") == 0
    out = capsys.readouterr().out
    store = ModelRegistry(root).store()
    assert f"sentiment: {store.root}, CURRENT {store.current_version()}" in out
    assert f"* {store.current_version()}" in out
    assert "reviews:" in out
    assert out.count("classes negative,positive") == 4


def test_rollback_then_promote(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = ModelRegistry(root).store()
    versions = store.versions()
    assert _cli(root, "rollback", "sentiment") == 0
    assert store.current_version() == versions[1]
    assert _cli(root, "rollback", "sentiment") == 0
    assert _cli(root, "rollback", "sentiment") == 2
    assert "no version older than" in capsys.readouterr().err
    assert store.current_version() == versions[0]
    assert _cli(root, "promote", "sentiment", versions[2]) == 0
    assert store.current_version() == versions[2]


def test_promote_refuses_a_version_that_fails_verification(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = ModelRegistry(root).store()
    versions = store.versions()
    metadata = store.root / versions[0] / METADATA_FILE
    metadata.write_text(json.dumps({**json.loads(metadata.read_text()), "sha256": "0" * 64}))
    assert _cli(root, "promote", "sentiment", versions[0]) == 2
    assert "does not match the sha256" in capsys.readouterr().err
    assert store.current_version() == versions[-1]
    assert _cli(root, "promote", "sentiment", "no-such-version") == 2
    assert _cli(root, "promote", "../x", versions[0]) == 2
    assert "invalid model name" in capsys.readouterr().err


def test_prune_keeps_current(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = ModelRegistry(root).store()
    versions = store.versions()
    store.activate(versions[0])
    assert _cli(root, "prune", "sentiment", "--keep", "1") == 0
    assert store.versions() == [versions[0], versions[2]]
    assert "removed 1 versions" in capsys.readouterr().out


def test_migrate_from_the_old_layout(tmp_path: Path, trained: ModelTrainer, capsys: pytest.CaptureFixture[str]) -> None:
    old = ModelStore(tmp_path).publish(trained.pipeline_, {"classes": trained.classes_})
    assert _cli(tmp_path, "list") == 0
    assert "old single-model layout" in capsys.readouterr().out
    assert _cli(tmp_path, "migrate") == 0
    assert ModelRegistry(tmp_path).store().current_version() == old
    assert _cli(tmp_path, "migrate") == 2
