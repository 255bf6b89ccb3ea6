"""A chunk is scored as /predict scores it: the serving text rules, then the served Predictor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from src.batch.scoring import ChunkScorer, Unreadable, limits_of, load_predictor, output_names, resolve
from src.config import Settings
from src.errors import ModelStoreError
from src.serving.predictor import Predictor
from src.serving.text_rules import TextLimits
from src.store.store import StoredModel


@pytest.fixture(scope="module")
def predictor(stored: StoredModel) -> Predictor:
    return Predictor(stored)


def test_each_value_is_scored_or_refused_with_the_rule_it_breaks(predictor: Predictor) -> None:
    scorer = ChunkScorer(predictor, TextLimits(max_text_length=50, max_batch_size=1))
    values: list[object] = [
        "a wonderful, moving film",
        "",
        "   \t",
        "x" * 51,
        None,
        7,
        b"\xff\xfe not utf-8",
        b"a dull mess",
        Unreadable("line 9 is not JSON"),
        "\ud800 half a character",
    ]
    scored = scorer.score(values)
    assert scored.errors[0] is None
    assert scored.errors[1] == "text must contain at least one non-whitespace character"
    assert scored.errors[2] == "text must contain at least one non-whitespace character"
    assert scored.errors[3] == "text has 51 characters; the limit is 50 (MAX_TEXT_LENGTH)"
    assert scored.errors[4] == "text is empty (null)"
    assert scored.errors[5] == "text must be a string, not int"
    assert scored.errors[6] == "text is not UTF-8 (byte 0)"
    assert scored.errors[7] is None
    assert scored.errors[8] == "line 9 is not JSON"
    assert scored.errors[9] is not None
    assert "lone surrogate" in scored.errors[9]
    assert scored.refused == 8
    assert scored.labels[0] == predictor.predict("a wonderful, moving film").label
    assert scored.labels[7] == predictor.predict("a dull mess").label
    assert [label is None for label in scored.labels] == [error is not None for error in scored.errors]
    assert np.isnan(scored.values[1]).all()
    assert not np.isnan(scored.values[0]).any()


def test_the_outputs_are_the_predictors_own_in_its_class_order(predictor: Predictor, settings: Settings) -> None:
    texts = ["great acting", "terrible plot", "it was fine i guess", "loved every minute"]
    scored = ChunkScorer(predictor, limits_of(settings)).score(texts)
    assert output_names(predictor) == [f"probability_{label}" for label in predictor.classes]
    for text, label, row in zip(texts, scored.labels, scored.values, strict=True):
        prediction = predictor.predict(text)
        assert label == prediction.label
        assert prediction.probabilities is not None
        assert row.tolist() == list(prediction.probabilities.values())


class _FailsOnSome(Predictor):
    def predict_batch(self, texts):
        if any("boom" in text for text in texts):
            raise RuntimeError("boom")
        return super().predict_batch(texts)


def test_a_model_that_raises_refuses_only_the_texts_it_fails_on(stored: StoredModel, settings: Settings) -> None:
    scored = ChunkScorer(_FailsOnSome(stored), limits_of(settings)).score(["fine film", "boom goes it", "bad film"])
    assert scored.errors[0] is None
    assert scored.errors[2] is None
    assert scored.errors[1] == "the model failed on this text: RuntimeError: boom"


def test_the_version_is_fixed_before_any_row_and_a_missing_one_is_named(model_dir: Path, settings: Settings) -> None:
    choice = resolve(settings, model_dir, None, None)
    assert choice.name == settings.default_model_name
    assert load_predictor(settings, choice).version == choice.version
    with pytest.raises(ModelStoreError, match=r"no model named 'nope' in .* \(models: sentiment\)"):
        resolve(settings, model_dir, "nope", None)
    with pytest.raises(ModelStoreError, match=r"model sentiment has no version 'v9'"):
        resolve(settings, model_dir, None, "v9")
    with pytest.raises(ModelStoreError, match=r"no model named 'sentiment' in .* \(models: none\)"):
        resolve(settings, model_dir / "empty", None, None)
