"""Several models in one process: each loaded, reloaded and ready on its own; the readiness rule."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from src.api.main import create_app
from src.errors import UnknownModelError
from src.model.trainer import ModelTrainer
from src.serving.dataplane import DataPlane
from src.serving.predictor import Predictor
from src.serving.served_models import ServedModels, parse_required
from src.serving.text_rules import TextLimits
from src.store.registry import ModelRegistry
from src.store.store import METADATA_FILE, ModelStore
from tests.conftest import SECOND_MODEL, make_settings


@pytest.fixture
def root(tmp_path: Path, two_models_dir: Path) -> Path:
    """A private copy of the two-model store, free to break."""
    shutil.copytree(two_models_dir, tmp_path / "models")
    return tmp_path / "models"


def _serving(models: ServedModels, name: str | None = None) -> Predictor:
    return DataPlane(models, TextLimits(max_text_length=100, max_batch_size=1)).resolve(name)[1]


def _served(root: Path, required: str = "") -> ServedModels:
    models = ServedModels(
        [ModelRegistry(root)], default_name="sentiment", required=parse_required(required), max_models=8
    )
    models.load_all()
    return models


def _break_current(root: Path, name: str) -> None:
    store = ModelRegistry(root).store(name)
    metadata = store.root / str(store.current_version()) / METADATA_FILE
    metadata.write_text(json.dumps({**json.loads(metadata.read_text()), "sha256": "0" * 64}))


def test_every_model_in_the_store_is_served(root: Path) -> None:
    models = _served(root)
    assert sorted(models.models) == ["sentiment", SECOND_MODEL]
    assert _serving(models).classes == ["negative", "positive"]
    assert _serving(models, SECOND_MODEL).classes == ["review", "tweet"]
    assert models.not_ready() == {}
    with pytest.raises(UnknownModelError, match="models: sentiment, source"):
        _serving(models, "topics")


def test_one_bad_model_leaves_the_others_serving(root: Path) -> None:
    _break_current(root, SECOND_MODEL)
    models = _served(root)
    assert _serving(models).version
    assert models.models[SECOND_MODEL].predictor is None
    assert "sha256" in str(models.models[SECOND_MODEL].not_ready_reason)
    assert models.not_ready() == {}  # not required: the pod stays ready for the default model
    strict = _served(root, required="*")
    assert list(strict.not_ready()) == [SECOND_MODEL]
    named = _served(root, required=f"sentiment, {SECOND_MODEL}")
    assert list(named.not_ready()) == [SECOND_MODEL]


def test_a_required_model_that_is_not_published_keeps_the_server_not_ready(root: Path) -> None:
    models = _served(root, required="topics")
    assert models.required_names() == ["topics"]
    assert "no version published yet" in models.not_ready()["topics"]
    assert _serving(models).version  # the default model serves all the same


def test_a_model_published_while_serving_is_found_at_the_next_check(root: Path, trained: ModelTrainer) -> None:
    models = _served(root)
    version = trained.save_model(root, name="late")
    changed = asyncio.run(models.reload_if_changed())
    assert changed["late"] is True
    assert _serving(models, "late").version == version
    assert changed["sentiment"] is False


def test_the_old_layout_serves_beside_new_models(tmp_path: Path, trained: ModelTrainer) -> None:
    old = ModelStore(tmp_path).publish(trained.pipeline_, {"classes": trained.classes_})
    trained.save_model(tmp_path, name="reviews")
    models = _served(tmp_path)
    assert sorted(models.models) == ["reviews", "sentiment"]
    assert _serving(models).version == old


def test_the_images_store_serves_a_model_the_volume_lacks(root: Path, tmp_path: Path, trained: ModelTrainer) -> None:
    volume = tmp_path / "volume"
    models = ServedModels([ModelRegistry(volume), ModelRegistry(root)], default_name="sentiment", max_models=8)
    models.load_all()
    assert _serving(models, SECOND_MODEL).version == ModelRegistry(root).store(SECOND_MODEL).current_version()
    published = trained.save_model(volume)
    assert asyncio.run(models.reload_if_changed())["sentiment"]
    assert _serving(models).version == published


def test_health_and_ready_report_each_model(root: Path) -> None:
    _break_current(root, SECOND_MODEL)
    with TestClient(create_app(make_settings(root))) as client:
        health = client.get("/health").json()
        assert health["status"] == "ok"
        assert health["models"]["sentiment"]["ready"] is True
        assert health["models"][SECOND_MODEL] == {
            "ready": False,
            "version": None,
            "engine": None,
            "reason": health["models"][SECOND_MODEL]["reason"],
            "required": False,
        }
        assert client.get("/health/ready").status_code == 200
        assert client.post(f"/models/{SECOND_MODEL}/predict", json={"text": "hi"}).status_code == 503
        assert client.get(f"/v2/models/{SECOND_MODEL}/ready").status_code == 400
    with TestClient(create_app(make_settings(root, required_models="*"))) as client:
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["detail"].startswith(f"model {SECOND_MODEL}: ")
        assert client.get("/v2/health/ready").status_code == 400
        assert client.get("/health").json()["status"] == "not_ready"


def test_models_past_max_models_are_logged_not_loaded(
    tmp_path: Path, two_models_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Ten copies of the default model grew one process from 156 to 865 MiB: an unbounded store ends in
    the pod's memory limit with every model down. Past MAX_MODELS the rest wait, named in the log."""
    root = tmp_path / "models"
    shutil.copytree(two_models_dir, root)
    source = root / SECOND_MODEL
    for index in range(4):
        shutil.copytree(source, root / f"extra{index}")
    models = ServedModels([ModelRegistry(root)], default_name="sentiment", required=["extra3"], max_models=3)
    with caplog.at_level("WARNING"):
        models.load_all()
        models.discover()  # again at the next poll: logged once
    assert sorted(models.models) == ["extra0", "extra3", "sentiment"]  # default and required first
    skipped = [r.getMessage() for r in caplog.records if "not served" in r.getMessage()]
    assert len(skipped) == 3
    assert all("(MAX_MODELS)" in message for message in skipped)
