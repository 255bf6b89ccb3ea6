"""The data plane on its own: one call resolves the model, applies the text rules, scores and observes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from src.errors import InvalidInputError, ModelNotReadyError, UnknownModelError
from src.serving.dataplane import DataPlane
from src.serving.inference import InferenceRequest
from src.serving.served_models import ServedModels
from src.serving.text_rules import TextLimits
from src.store.registry import ModelRegistry

LIMITS = TextLimits(max_text_length=50, max_batch_size=3)


def _served(root: Path) -> ServedModels:
    return ServedModels([ModelRegistry(root)], default_name="sentiment", max_models=8)


@pytest.fixture
def plane(model_dir: Path) -> DataPlane:
    models = _served(model_dir)
    models.load_all()
    return DataPlane(models, LIMITS)


def test_scores_in_order_with_the_model_version(plane: DataPlane) -> None:
    inference = asyncio.run(
        plane.infer(InferenceRequest(["A wonderful, moving film.", "Dull, boring and far too long."]))
    )
    assert [p.label for p in inference.predictions] == ["positive", "negative"]
    assert inference.model_version == plane.resolve()[1].version
    for prediction in inference.predictions:
        assert prediction.probabilities is not None
        assert list(prediction.probabilities) == inference.classes  # class order
        assert abs(sum(prediction.probabilities.values()) - 1) < 1e-12
    assert inference.explanations is None


def test_explanations_are_bounded_by_top_terms(plane: DataPlane) -> None:
    request = InferenceRequest(["great film, wonderful cast, superb story"], explain=True, top_terms=2)
    inference = asyncio.run(plane.infer(request))
    assert inference.explanations is not None
    assert len(inference.explanations[0].terms) == 2


@pytest.mark.parametrize(
    ("texts", "index", "words"),
    [
        (["a", "b", "c", "d"], None, "batch has 4 texts; the limit is 3"),
        ([], None, "at least one text is needed"),
        (["ok", "x" * 51], 1, "text has 51 characters; the limit is 50"),
        (["ok", " \t\u3000"], 1, "at least one non-whitespace character"),
        (["ok", ""], 1, "at least one non-whitespace character"),
        (["\ufdfa" * 10], 0, "expands to 180 characters under Unicode normalisation"),
    ],
)
def test_every_text_rule_names_the_text_it_concerns(
    plane: DataPlane, texts: list[str], index: int | None, words: str
) -> None:
    """The core names the text by its index (None: the batch); each adapter places it in its request."""
    with pytest.raises(InvalidInputError, match=words) as raised:
        asyncio.run(plane.infer(InferenceRequest(texts)))
    assert raised.value.text_index == index
    assert raised.value.loc == ()
    placed = raised.value.at(lambda i: ("item", i), ("batch",))
    assert placed.loc == (("batch",) if index is None else ("item", index))


def test_no_model_is_a_503_with_retry_after(tmp_path: Path) -> None:
    plane = DataPlane(_served(tmp_path), LIMITS)
    with pytest.raises(ModelNotReadyError) as raised:
        asyncio.run(plane.infer(InferenceRequest(["anything"])))
    assert raised.value.status_code == 503
    assert raised.value.retry_after is not None


def test_an_unknown_model_or_version_is_a_404_before_the_texts_are_looked_at(plane: DataPlane) -> None:
    with pytest.raises(UnknownModelError, match="no model named 'topic'"):
        asyncio.run(plane.infer(InferenceRequest([""], model="topic")))
    with pytest.raises(UnknownModelError, match="has no version 'v0' loaded"):
        asyncio.run(plane.infer(InferenceRequest([""], model="sentiment", version="v0")))
    with pytest.raises(UnknownModelError) as raised:
        asyncio.run(plane.infer(InferenceRequest(["x"], model="sentiment", version="v" * 5000)))
    assert len(raised.value.message) < 200


def test_predictions_are_counted_under_their_model(plane: DataPlane) -> None:
    labels = {"model": "sentiment", "label": "positive"}
    before = REGISTRY.get_sample_value("mlservice_predictions_total", labels) or 0.0
    inference = asyncio.run(plane.infer(InferenceRequest(["A wonderful, moving film."], model="sentiment")))
    assert inference.model_name == "sentiment"
    assert REGISTRY.get_sample_value("mlservice_predictions_total", labels) == before + 1


class _CountingModels(dict[str, object]):
    """The served models by name, counting every lookup."""

    lookups = 0

    def get(self, key: str, default: object = None) -> object:
        type(self).lookups += 1
        return super().get(key, default)

    def __getitem__(self, key: str) -> object:
        type(self).lookups += 1
        return super().__getitem__(key)


def test_an_inference_finds_its_model_once(plane: DataPlane) -> None:
    plane.models.models = _CountingModels(plane.models.models)  # type: ignore[assignment]
    _CountingModels.lookups = 0
    asyncio.run(plane.infer(InferenceRequest(["A wonderful, moving film."])))
    assert _CountingModels.lookups == 1
