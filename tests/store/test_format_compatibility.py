"""A model published before the packages were split by layer still loads, verifies and serves exactly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from src.api.main import create_app
from src.serving.predictor import Predictor
from src.store.registry import ModelRegistry
from tests.conftest import make_settings

FIXTURE = Path(__file__).parent / "fixtures" / "store-fb304f7"
TEXT = "not bad at all, a wonderful film"
EXPECTED = {"negative": 0.11179791868181355, "positive": 0.8882020813181865}  # computed by the code at fb304f7


@pytest.fixture
def old_store(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    shutil.copytree(FIXTURE, root)
    return root


def test_a_model_file_from_before_the_move_loads_and_scores_the_same(old_store: Path) -> None:
    stored = ModelRegistry(old_store).store().load()
    assert type(stored.pipeline.steps[0][1]).__module__ == "src.model.text_features"
    predictor = Predictor(stored)
    assert predictor.engine == "compiled"
    prediction = predictor.predict(TEXT)
    assert prediction.probabilities is not None
    for label, probability in EXPECTED.items():
        assert prediction.probabilities[label] == pytest.approx(probability, abs=1e-12)


def test_a_model_file_from_before_the_move_is_served(old_store: Path) -> None:
    with TestClient(create_app(make_settings(old_store))) as client:
        answer = client.post("/predict", json={"text": TEXT}).json()
    assert answer["label"] == "positive"
    assert answer["probabilities"]["positive"] == pytest.approx(EXPECTED["positive"], abs=1e-12)
