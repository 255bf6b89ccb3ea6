"""What a model sees per text, by either engine, as the serving side counts it."""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler
from sklearn.svm import LinearSVC

from src.engine.compiled import CompiledScorer, UnsupportedPipelineError
from src.engine.observations import observe
from src.model.datasets import Dataset

TEXTS = ["a wonderful film", "dull and far too long", "zzyzx qwxv", "!!!"]


def _fit(steps: list[tuple[str, object]], sample: Dataset) -> Pipeline:
    part = sample.sample(2000, random_state=1)
    return Pipeline(steps).fit(part.texts, part.labels)


def _counts(pipeline: Pipeline, text: str) -> tuple[int, int]:
    vectorizer = pipeline.steps[0][1]
    terms = vectorizer.build_analyzer()(text)
    return len(terms), sum(term not in vectorizer.vocabulary_ for term in terms)


def test_both_engines_observe_what_scikit_learn_computes(sample: Dataset) -> None:
    compiled = _fit([("tfidf", TfidfVectorizer()), ("clf", LogisticRegression())], sample)
    CompiledScorer(compiled)  # served compiled
    through_pipeline = _fit(
        [("tfidf", TfidfVectorizer()), ("scale", MaxAbsScaler()), ("clf", LogisticRegression())], sample
    )
    try:
        CompiledScorer(through_pipeline)
    except UnsupportedPipelineError:
        pass  # served by the Pipeline engine: the other branch
    else:
        raise AssertionError("a scaler between the steps was expected to need the Pipeline engine")
    for pipeline in (compiled, through_pipeline):
        seen = observe(pipeline, TEXTS)
        probabilities = pipeline.predict_proba(TEXTS)
        assert [o.label for o in seen] == list(pipeline.predict(TEXTS))
        assert np.allclose([o.score for o in seen], probabilities.max(axis=1), atol=1e-12)
        assert [(o.tokens, o.unknown_tokens) for o in seen] == [_counts(pipeline, text) for text in TEXTS]
    assert observe(compiled, ["!!!"])[0].oov_rate == 0.0  # no words: nothing unknown


def test_a_model_without_probabilities_is_watched_by_its_signed_score(sample: Dataset) -> None:
    pipeline = _fit([("tfidf", TfidfVectorizer()), ("clf", LinearSVC())], sample)
    seen = observe(pipeline, TEXTS)
    assert np.allclose([o.score for o in seen], pipeline.decision_function(TEXTS), atol=1e-12)
