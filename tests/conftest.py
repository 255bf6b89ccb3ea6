"""Shared fixtures: small real datasets, trained models in temporary stores, app clients."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from src.api.main import create_app
from src.config import Settings
from src.model.datasets import Dataset, load_bundled
from src.model.trainer import ModelTrainer
from src.store.registry import ModelRegistry
from src.store.store import StoredModel


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
    """A store root holding the trained model as the default model's CURRENT (shared: tests must not change it)."""
    root = tmp_path_factory.mktemp("models")
    trained.save_model(root, dataset=sample, reference=held_out(sample, 2000))
    return root


def held_out(sample: Dataset, count: int) -> list[str]:
    """Bundled texts the sample does not hold (what a model trained on it has not seen), in random order."""
    seen = set(sample.texts)
    texts = [text for text in load_bundled().sample(count + len(seen) // 4, random_state=11).texts if text not in seen]
    random.Random(11).shuffle(texts)
    return texts[:count]


SECOND_MODEL = "source"


@pytest.fixture(scope="session")
def source_trainer(sample: Dataset) -> ModelTrainer:
    """A second, different classifier on real text: which kind of source a text reads like (3 classes)."""
    kinds = {"imdb": "review", "rotten_tomatoes": "review", "tweets": "tweet"}
    part = sample.where(lambda source: source in kinds).sample(3000, random_state=3)
    return ModelTrainer().train(part.texts, [kinds[source] for source in part.sources])


@pytest.fixture(scope="session")
def two_models_dir(
    tmp_path_factory: pytest.TempPathFactory, trained: ModelTrainer, source_trainer: ModelTrainer, sample: Dataset
) -> Path:
    """A store root with the default model and a second one named SECOND_MODEL (shared: do not change);
    the second has no reference profile for drift."""
    root = tmp_path_factory.mktemp("two-models")
    trained.save_model(root, reference=held_out(sample, 2000))
    source_trainer.save_model(root, name=SECOND_MODEL)
    return root


@pytest.fixture(scope="session")
def stored(model_dir: Path) -> StoredModel:
    """The trained model as the store loads it."""
    return ModelRegistry(model_dir).store().load()


def make_settings(model_dir: Path, **overrides: object) -> Settings:
    """Settings for a test app: no store polling unless asked for."""
    values: dict[str, object] = {"model_dir": model_dir, "model_poll_seconds": 0, **overrides}
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def client(model_dir: Path) -> Iterator[TestClient]:
    """A client of an app serving the trained model, lifespan running."""
    with TestClient(create_app(make_settings(model_dir))) as test_client:
        yield test_client


@pytest.fixture
def two_models_client(two_models_dir: Path) -> Iterator[TestClient]:
    """A client of an app serving the default model and SECOND_MODEL, lifespan running."""
    with TestClient(create_app(make_settings(two_models_dir))) as test_client:
        yield test_client
