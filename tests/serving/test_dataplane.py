"""The data plane on its own: limits, scoring, metrics and errors, with no HTTP request anywhere."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from src.errors import InvalidInputError, ModelNotReadyError, UnknownModelError
from src.serving.dataplane import DataPlane
from src.serving.served_models import ServedModels
from src.store.registry import ModelRegistry
from tests.conftest import make_settings


@pytest.fixture
def plane(model_dir: Path) -> DataPlane:
    models = ServedModels([ModelRegistry(model_dir)], default_name="sentiment")
    models.load_all()
    return DataPlane(models, make_settings(model_dir, max_batch_size=3, max_text_length=50))


def test_scores_in_order_with_the_model_version(plane: DataPlane) -> None:
    inference = asyncio.run(plane.infer(["A wonderful, moving film.", "Dull, boring and far too long."]))
    assert [r["label"] for r in inference.results] == ["positive", "negative"]
    assert inference.model_version == plane.models.require().version
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-12 for r in inference.results)


def test_explanations_are_bounded_by_top_terms(plane: DataPlane) -> None:
    inference = asyncio.run(plane.infer(["great film, wonderful cast, superb story"], explain=True, top_terms=2))
    assert len(inference.results[0]["explanation"]["terms"]) == 2


@pytest.mark.parametrize(
    ("texts", "loc", "words"),
    [
        (["a", "b", "c", "d"], ("batch",), "batch has 4 texts; the limit is 3"),
        (["ok", "x" * 51], ("item", 1), "text has 51 characters; the limit is 50"),
        (["\ufdfa" * 10], ("item", 0), "expands to 180 characters under Unicode normalisation"),
    ],
)
def test_limits_name_where_the_problem_is(
    plane: DataPlane, texts: list[str], loc: tuple[object, ...], words: str
) -> None:
    with pytest.raises(InvalidInputError, match=words) as raised:
        plane.check_texts(texts, lambda index: ("item", index), ("batch",))
    assert raised.value.loc == loc


def test_no_model_is_a_503(tmp_path: Path) -> None:
    plane = DataPlane(ServedModels([ModelRegistry(tmp_path)], default_name="sentiment"), make_settings(tmp_path))
    with pytest.raises(ModelNotReadyError) as raised:
        asyncio.run(plane.infer(["anything"]))
    assert raised.value.status_code == 503


def test_an_unknown_model_or_version_is_a_404(plane: DataPlane) -> None:
    with pytest.raises(UnknownModelError, match="no model named 'topic'"):
        asyncio.run(plane.infer(["anything"], model="topic"))
    with pytest.raises(UnknownModelError, match="has no version 'v0' loaded"):
        asyncio.run(plane.infer(["anything"], model="sentiment", version="v0"))


def test_predictions_are_counted_under_their_model(plane: DataPlane) -> None:
    labels = {"model": "sentiment", "label": "positive"}
    before = REGISTRY.get_sample_value("mlservice_predictions_total", labels) or 0.0
    inference = asyncio.run(plane.infer(["A wonderful, moving film."], model="sentiment"))
    assert inference.model_name == "sentiment"
    assert REGISTRY.get_sample_value("mlservice_predictions_total", labels) == before + 1
