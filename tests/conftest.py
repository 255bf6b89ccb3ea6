"""Shared fixtures: small real datasets, trained models in temporary stores, app clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from src.api.main import create_app
from src.config import Settings
from src.model.datasets import Dataset, load_bundled
from src.model.store import ModelStore, StoredModel
from src.model.trainer import ModelTrainer


@pytest.fixture(scope="session")
def bundled() -> Dataset:
    """All the bundled training data."""
    return load_bundled()


@pytest.fixture(scope="session")
def sample(bundled: Dataset) -> Dataset:
    """A stratified sample big enough for a model that gets clear cases right."""
    return bundled.sample(12_000, random_state=7)


@pytest.fixture(scope="session")
def trained(sample: Dataset) -> ModelTrainer:
    """The default trainer, fitted on the sample."""
    return ModelTrainer().train(sample.texts, sample.labels)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory, trained: ModelTrainer, sample: Dataset) -> Path:
    """A model store holding the trained model as CURRENT (shared: tests must not change it)."""
    root = tmp_path_factory.mktemp("models")
    trained.save_model(root, dataset=sample)
    return root


@pytest.fixture(scope="session")
def stored(model_dir: Path) -> StoredModel:
    """The trained model as the store loads it."""
    return ModelStore(model_dir).load()


def make_settings(model_dir: Path, **overrides: object) -> Settings:
    """Settings for a test app: no store polling unless asked for."""
    values: dict[str, object] = {"model_dir": model_dir, "model_poll_seconds": 0, **overrides}
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def client(model_dir: Path) -> Iterator[TestClient]:
    """A client of an app serving the trained model, lifespan running."""
    with TestClient(create_app(make_settings(model_dir))) as test_client:
        yield test_client
