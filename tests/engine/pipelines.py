"""Every supported pipeline type, built in plain scikit-learn (no project code), as a user would."""

from __future__ import annotations

from collections.abc import Callable

from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression, RidgeClassifier, SGDClassifier
from sklearn.naive_bayes import ComplementNB, MultinomialNB
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC


def _union() -> FeatureUnion:
    return FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2)),
        ],
        transformer_weights={"words": 1.0, "chars": 0.5},
    )


# name -> (factory, three classes?): every vectorizer, analyzer and classifier of the supported family.
SUPPORTED: dict[str, tuple[Callable[[], Pipeline], bool]] = {
    "tfidf-logreg": (
        lambda: Pipeline([("v", TfidfVectorizer(ngram_range=(1, 2), min_df=2)), ("c", LogisticRegression())]),
        False,
    ),
    "tfidf-logreg-multinomial": (lambda: Pipeline([("v", TfidfVectorizer()), ("c", LogisticRegression(C=5))]), True),
    "count-logreg": (lambda: Pipeline([("v", CountVectorizer(binary=True)), ("c", LogisticRegression())]), False),
    "char-linearsvc": (
        lambda: Pipeline([("v", TfidfVectorizer(analyzer="char", ngram_range=(1, 3))), ("c", LinearSVC())]),
        False,
    ),
    "hashing-tfidf-sgd": (
        lambda: Pipeline(
            [
                ("v", HashingVectorizer(n_features=2**18, ngram_range=(1, 2))),
                ("t", TfidfTransformer()),
                ("c", SGDClassifier(loss="log_loss", random_state=0)),
            ]
        ),
        True,
    ),
    "hashing-sgd-hinge": (
        lambda: Pipeline([("v", HashingVectorizer(n_features=2**16)), ("c", SGDClassifier(random_state=0))]),
        False,
    ),
    "count-tfidf-sgd-huber": (
        lambda: Pipeline(
            [
                ("v", CountVectorizer()),
                ("t", TfidfTransformer(sublinear_tf=True)),
                ("c", SGDClassifier(loss="modified_huber", random_state=0)),
            ]
        ),
        True,
    ),
    "union-ridge": (lambda: Pipeline([("u", _union()), ("c", RidgeClassifier())]), True),
    "union-logreg": (lambda: Pipeline([("u", _union()), ("c", LogisticRegression())]), False),
    "count-multinomialnb": (lambda: Pipeline([("v", CountVectorizer()), ("c", MultinomialNB())]), True),
    "tfidf-complementnb": (lambda: Pipeline([("v", TfidfVectorizer()), ("c", ComplementNB())]), False),
    "calibrated-linearsvc": (
        lambda: Pipeline([("v", TfidfVectorizer()), ("c", CalibratedClassifierCV(LinearSVC(), cv=3))]),
        False,
    ),
    "calibrated-isotonic-multiclass": (
        lambda: Pipeline(
            [("v", TfidfVectorizer()), ("c", CalibratedClassifierCV(LogisticRegression(), cv=3, method="isotonic"))]
        ),
        True,
    ),
}
