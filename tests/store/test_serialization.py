from __future__ import annotations

import pytest
import skops.io
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from src.model.text_features import NegationTfidfVectorizer
from src.store.serialization import UnusableModelError, dump_pipeline, load_pipeline

TEXTS = ["good film", "great acting", "bad plot", "awful film"]
LABELS = ["positive", "positive", "negative", "negative"]


def test_round_trip_keeps_the_vocabulary_and_the_callers_pipeline() -> None:
    pipeline = Pipeline([("tfidf", TfidfVectorizer()), ("clf", LogisticRegression())]).fit(TEXTS, LABELS)
    data = dump_pipeline(pipeline)
    assert isinstance(pipeline.named_steps["tfidf"].vocabulary_, dict)
    loaded = load_pipeline(data)
    assert loaded.named_steps["tfidf"].vocabulary_ == pipeline.named_steps["tfidf"].vocabulary_
    assert not hasattr(loaded.named_steps["tfidf"], "vocabulary_terms_")
    assert (loaded.predict_proba(TEXTS) == pipeline.predict_proba(TEXTS)).all()


def test_terms_with_newlines_fall_back_to_the_plain_format() -> None:
    vectorizer = TfidfVectorizer(token_pattern=r"[a-z]+\n?[a-z]*")
    pipeline = Pipeline([("tfidf", vectorizer), ("clf", LogisticRegression())]).fit(["a\nb c", "d e\nf"], ["x", "y"])
    assert any("\n" in term for term in pipeline.named_steps["tfidf"].vocabulary_)
    loaded = load_pipeline(dump_pipeline(pipeline))
    assert loaded.named_steps["tfidf"].vocabulary_ == pipeline.named_steps["tfidf"].vocabulary_


def test_not_a_skops_file() -> None:
    with pytest.raises(UnusableModelError, match="not a skops file"):
        load_pipeline(b"garbage")


def test_a_fitted_non_pipeline_is_refused() -> None:
    data = skops.io.dumps(LogisticRegression().fit([[0.0], [1.0]], [0, 1]))
    with pytest.raises(UnusableModelError, match="scikit-learn Pipeline"):
        load_pipeline(data)


class LookalikeVectorizer(TfidfVectorizer):  # type: ignore[misc]
    """A vectorizer subclass that is not on the reviewed list."""


def test_the_negation_vectorizer_is_trusted_and_other_subclasses_are_not() -> None:
    trusted = Pipeline([("tfidf", NegationTfidfVectorizer()), ("clf", LogisticRegression())]).fit(TEXTS, LABELS)
    loaded = load_pipeline(dump_pipeline(trusted))
    assert type(loaded.named_steps["tfidf"]) is NegationTfidfVectorizer
    assert (loaded.predict_proba(["not good"]) == trusted.predict_proba(["not good"])).all()
    lookalike = Pipeline([("tfidf", LookalikeVectorizer()), ("clf", LogisticRegression())]).fit(TEXTS, LABELS)
    with pytest.raises(UnusableModelError, match=r"untrusted types .*LookalikeVectorizer"):
        load_pipeline(dump_pipeline(lookalike))
