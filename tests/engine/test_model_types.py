"""Every supported pipeline type compiles and reproduces scikit-learn to 1e-9; everything else is
served by the Pipeline or refused, and the trusted types cover exactly what the specs bring."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import skops.io
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler

from src.engine.compiled import CompiledScorer, UnsupportedPipelineError
from src.engine.model_types import SPECS, trusted_types
from src.engine.parity import builtin_texts, check_parity
from src.engine.pipeline_checks import UnsupportedModelError, check_pipeline
from src.model.datasets import Dataset
from src.serving.explanation import explain
from src.store.serialization import _types_in_file, dump_pipeline, load_pipeline
from tests.engine.pipelines import SUPPORTED

TOLERANCE = 1e-9


def labels_for(data: Dataset, three: bool) -> list[str]:
    """Sentiment labels, or three classes (tweets apart) for the multiclass cases."""
    if not three:
        return data.labels
    return [s if s == "tweets" else label for s, label in zip(data.sources, data.labels, strict=True)]


@pytest.fixture(scope="module")
def train(bundled: Dataset) -> Dataset:
    return bundled.sample(3000, random_state=3)


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return builtin_texts(1000)


@pytest.mark.parametrize("kind", sorted(SUPPORTED))
def test_each_supported_type_compiles_and_matches_scikit_learn(kind: str, train: Dataset, texts: list[str]) -> None:
    make, three = SUPPORTED[kind]
    pipeline = make().fit(train.texts, labels_for(train, three))
    stored = load_pipeline(dump_pipeline(pipeline))  # as a server loads it: audited, checked
    scorer = CompiledScorer(stored)
    has_probabilities = hasattr(pipeline, "predict_proba")
    expected = pipeline.predict_proba(texts) if has_probabilities else pipeline.decision_function(texts)
    expected = np.asarray(expected).reshape(len(texts), -1)
    outputs = [scorer.outputs(scorer.weigh(text)) for text in texts]
    actual = np.array([probabilities if has_probabilities else scores for _, probabilities, scores in outputs])
    assert scorer.has_probabilities == has_probabilities
    assert np.abs(actual - expected).max() <= TOLERANCE
    assert [scorer.classes[winner] for winner, _, _ in outputs] == [str(c) for c in pipeline.predict(texts)]
    served = [scorer.score(text) for text in texts[:50]]  # what a Prediction holds as is: Python floats
    assert {type(v) for s in served for v in [*(s.probabilities or ()), *s.scores]} == {float}
    report = check_parity(pipeline, stored, texts)
    assert report.passed
    assert report.engine == "compiled"


@pytest.mark.parametrize("kind", sorted(SUPPORTED))
def test_explanations_add_up_to_the_explained_scores(kind: str, train: Dataset) -> None:
    make, three = SUPPORTED[kind]
    scorer = CompiledScorer(make().fit(train.texts, labels_for(train, three)))
    head = scorer.head
    for text in ("A wonderful film, but the ending was awful.", "the battery overheats", "ok"):
        weighted, explanation = explain(scorer, text, top=3)
        for k, label in enumerate(head.score_labels):
            listed = sum(float(term["contributions"][label]) for term in explanation.terms)  # type: ignore[index,misc]
            total = explanation.intercepts[label] + listed + explanation.other_terms[label]
            assert math.isclose(total, explanation.scores[label], abs_tol=1e-9)
            direct = head.explained_intercepts[k] + sum(
                w * head.explained_rows[k][j] for j, w in zip(weighted.features, weighted.weights, strict=True)
            )
            assert math.isclose(direct, explanation.scores[label], abs_tol=1e-9)
        if head.rows is head.explained_rows:  # not calibrated: the explained scores are the decision itself
            assert scorer.decision(weighted) == pytest.approx(list(explanation.scores.values()), abs=1e-9)


def test_the_trusted_types_are_what_the_supported_types_bring(train: Dataset) -> None:
    needed: set[str] = set()
    small = train.sample(600, random_state=1)
    for make, three in SUPPORTED.values():
        needed |= _types_in_file(skops.io.dumps(make().fit(small.texts, labels_for(small, three))))
    trusted = set(trusted_types())
    assert needed <= trusted
    assert {spec.name for spec in SPECS} <= trusted


def test_hashing_columns_and_signs_match_scikit_learn_with_collisions() -> None:
    """Eight columns for hundreds of words: many collide, signed sums cancel to zero, binary keeps them."""
    rng = random.Random(5)
    words = [f"w{rng.randrange(10**6)}" for _ in range(400)]
    docs = [" ".join(rng.choices(words, k=rng.randint(1, 30))) for _ in range(300)]
    labels = ["a" if i % 2 else "b" for i in range(len(docs))]
    for options in ({}, {"binary": True}, {"alternate_sign": False, "norm": "l1"}, {"norm": None}):
        pipeline = Pipeline([("v", HashingVectorizer(n_features=8, **options)), ("c", LogisticRegression())]).fit(
            docs, labels
        )
        scorer = CompiledScorer(pipeline)
        expected = pipeline.predict_proba(docs)
        actual = np.array([scorer.predict_proba(doc) for doc in docs])
        assert np.abs(actual - expected).max() <= TOLERANCE


def test_a_step_between_features_and_classifier_is_served_by_the_pipeline(train: Dataset) -> None:
    pipeline = Pipeline(
        [("v", TfidfVectorizer()), ("svd", TruncatedSVD(20, random_state=0)), ("c", LogisticRegression())]
    )
    pipeline.fit(train.texts, train.labels)
    check_pipeline(pipeline)  # supported, ...
    with pytest.raises(UnsupportedPipelineError, match="TruncatedSVD between the features and the classifier"):
        CompiledScorer(pipeline)  # ... but not compiled
    report = check_parity(pipeline, load_pipeline(dump_pipeline(pipeline)), builtin_texts())
    assert report.passed
    assert report.engine == "pipeline"


def test_a_signed_hashing_count_under_sublinear_tf_is_not_compiled() -> None:
    """log of a signed sum: scikit-learn gives NaN, so the compiler does not pretend to reproduce it."""
    pipeline = Pipeline(
        [("v", HashingVectorizer(norm=None)), ("t", TfidfTransformer(sublinear_tf=True)), ("c", SGDClassifier())]
    )
    pipeline.set_params(v__alternate_sign=False).fit(["good", "bad", "fine", "awful"], ["p", "n", "p", "n"])
    pipeline.set_params(v__alternate_sign=True)
    with pytest.raises(UnsupportedPipelineError, match="sublinear_tf after a HashingVectorizer"):
        CompiledScorer(pipeline)


def test_a_pipeline_that_takes_numbers_is_refused() -> None:
    numbers = Pipeline([("scale", MaxAbsScaler()), ("c", LogisticRegression())]).fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(
        UnsupportedModelError, match="expects numbers rather than texts: its first step is MaxAbsScaler"
    ):
        check_pipeline(numbers)


@pytest.mark.parametrize(
    ("vocabulary", "reason"),
    [({"good": 0, "bad": 7}, "indices are not 0 to its size - 1"), ({"good": 1, "bad": 1}, "each once")],
)
def test_a_vocabulary_pointing_outside_the_coefficients_is_refused(vocabulary: dict[str, int], reason: str) -> None:
    pipeline = Pipeline([("v", TfidfVectorizer()), ("c", LogisticRegression())]).fit(["good", "bad"], ["p", "n"])
    pipeline.named_steps["v"].vocabulary_ = vocabulary
    with pytest.raises(UnsupportedModelError, match=reason):
        check_pipeline(pipeline)
