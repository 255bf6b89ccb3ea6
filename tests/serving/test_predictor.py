from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from src.serving.predictor import Predictor
from src.store.store import StoredModel

TEXTS = ["a wonderful film", "a dreadful film", "!!!", "qqqzzz great", "not good at all"]


def test_compiled_engine_matches_the_pipeline(stored: StoredModel) -> None:
    predictor = Predictor(stored)
    assert predictor.engine == "compiled"
    assert predictor.version == stored.version
    results = predictor.predict_batch(TEXTS)
    expected = stored.pipeline.predict_proba(TEXTS)
    for result, row in zip(results, expected, strict=True):
        assert result.probabilities is not None
        assert list(result.probabilities) == predictor.classes
        assert np.allclose(list(result.probabilities.values()), row, atol=1e-9, rtol=0)
        assert result.label == predictor.classes[int(np.argmax(row))]
        assert result.confidence == max(result.probabilities.values())


def test_single_prediction_equals_batch_entry(stored: StoredModel) -> None:
    predictor = Predictor(stored)
    assert predictor.predict(TEXTS[1]) == predictor.predict_batch(TEXTS)[1]


def test_oov_rate(stored: StoredModel) -> None:
    predictor = Predictor(stored)
    result = predictor.predict("qqqzzz great")
    assert (result.tokens, result.unknown_tokens, result.oov_rate) == (2, 1, 0.5)
    assert predictor.predict("!!!").oov_rate == 0.0


def test_unsupported_pipeline_falls_back_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    pipeline = Pipeline([("tfidf", TfidfVectorizer()), ("svd", TruncatedSVD(2)), ("clf", LogisticRegression())])
    pipeline.fit(["good film", "bad film", "great", "awful"], ["positive", "negative", "positive", "negative"])
    with caplog.at_level(logging.WARNING):
        predictor = Predictor(StoredModel("v1", pipeline, {}))
    assert predictor.engine == "pipeline"
    assert "TruncatedSVD between the features and the classifier is not compiled" in caplog.text
    results = predictor.predict_batch(["good", "awful film"])
    assert [r.label for r in results] == list(pipeline.predict(["good", "awful film"]))
    assert results[0].tokens > 0


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.text(max_size=200), min_size=1, max_size=5))
def test_any_strings_give_valid_probabilities(stored: StoredModel, texts: list[str]) -> None:
    predictor = Predictor(stored)
    for result in predictor.predict_batch(texts):
        assert result.probabilities is not None
        assert set(result.probabilities) == set(predictor.classes)
        assert all(0.0 <= p <= 1.0 for p in result.probabilities.values())
        assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-12)
        assert result.label == max(result.probabilities, key=result.probabilities.__getitem__)
        assert 0.0 <= result.oov_rate <= 1.0
