from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from src.engine.compiled import CompiledScorer
from src.errors import ServiceError
from src.model.datasets import Dataset
from src.serving.explanation import explain
from src.serving.predictor import Predictor
from src.store.store import StoredModel

TOLERANCE = 1e-9


def test_shares_plus_intercept_reproduce_the_decision_function(stored: StoredModel, bundled: Dataset) -> None:
    scorer = CompiledScorer(stored.pipeline)
    texts = [*bundled.sample(400, random_state=9).texts, "", "!!!", "great great great", "not good at all"]
    expected = stored.pipeline.decision_function(texts)
    for text, decision in zip(texts, expected, strict=True):
        _, explanation = explain(scorer, text)
        assert list(explanation.scores) == ["positive"]
        assert abs(explanation.scores["positive"] - decision) <= TOLERANCE
        listed = sum(t["contributions"]["positive"] for t in explanation.terms)  # type: ignore[index]
        total = explanation.intercepts["positive"] + listed + explanation.other_terms["positive"]
        assert abs(total - decision) <= TOLERANCE
        assert len(explanation.terms) == min(10, explanation.terms_total)


def test_multiclass_shares_reproduce_every_score(bundled: Dataset) -> None:
    train = bundled.sample(2000, random_state=4)
    labels = [s if s == "tweets" else y for s, y in zip(train.sources, train.labels, strict=True)]
    pipeline = Pipeline([("tfidf", TfidfVectorizer(ngram_range=(1, 2))), ("clf", LogisticRegression())])
    pipeline.fit(train.texts, labels)
    scorer = CompiledScorer(pipeline)
    texts = bundled.sample(100, random_state=5).texts
    expected = pipeline.decision_function(texts)
    for text, row in zip(texts, expected, strict=True):
        _, explanation = explain(scorer, text)
        assert list(explanation.scores) == ["negative", "positive", "tweets"]
        assert np.abs(np.array(list(explanation.scores.values())) - row).max() <= TOLERANCE
        assert set(explanation.towards) == {"negative", "positive", "tweets"}


def test_towards_lists_the_strongest_terms_for_each_side(stored: StoredModel) -> None:
    _, explanation = explain(CompiledScorer(stored.pipeline), "A wonderful film, but the ending was boring and awful.")
    positive = [share.term for share in explanation.towards["positive"]]
    negative = [share.term for share in explanation.towards["negative"]]
    assert "wonderful" in positive
    assert "boring" in negative or "awful" in negative
    for shares in explanation.towards.values():
        values = [share.contribution for share in shares]
        assert values == sorted(values, reverse=True)
        assert all(v > 0 for v in values)


def test_top_limits_each_list(stored: StoredModel) -> None:
    text = " ".join(["great", "awful", "superb", "dull", "brilliant", "boring"] * 3)
    _, explanation = explain(CompiledScorer(stored.pipeline), text, top=2)
    assert all(len(shares) <= 2 for shares in explanation.towards.values())


def test_pipeline_engine_cannot_explain() -> None:
    pipeline = Pipeline([("tfidf", TfidfVectorizer()), ("svd", TruncatedSVD(2)), ("clf", LogisticRegression())])
    pipeline.fit(["good", "bad", "fine", "awful"], ["p", "n", "p", "n"])
    with pytest.raises(ServiceError, match=r"no explanations .*TruncatedSVD between") as raised:
        Predictor(StoredModel("v", pipeline, {})).predict_explained("good")
    assert raised.value.status_code == 501


def test_explained_prediction_equals_the_plain_one(stored: StoredModel) -> None:
    predictor = Predictor(stored)
    for text in ("A wonderful film.", "Dull and boring.", "", "qqqzzz great"):
        prediction, explanation = predictor.predict_explained(text)
        assert prediction == predictor.predict(text)
        assert set(explanation.towards) == {"negative", "positive"}


def test_a_long_text_explains_in_bounded_size(stored: StoredModel, bundled: Dataset) -> None:
    """The reproduction: explain on 256 long texts answered 24 MB; every term was listed."""
    text = " ".join(bundled.texts[:40])[:20_000]
    _, explanation = explain(CompiledScorer(stored.pipeline), text, top=5)
    assert explanation.terms_total > 500
    assert len(explanation.terms) == 5
    magnitudes = [abs(t["contributions"]["positive"]) for t in explanation.terms]  # type: ignore[index]
    assert magnitudes == sorted(magnitudes, reverse=True)
