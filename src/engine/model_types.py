"""Every kind of pipeline step the service serves, each as one spec: the types a fitted instance brings
into a skops file, the parameter rules every server checks before serving it, and how it compiles.

A step whose spec has no compiler (`featurizer` or `head` None) is still served, by the Pipeline
engine (scikit-learn itself). A type without a spec is refused wherever a model comes in. Adding a
model type is adding its spec here (and a case to the parity matrix in tests/engine).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from src.engine import classifiers, featurizers
from src.engine.token_patterns import UnsupportedModelError, check_token_pattern

MAX_NGRAM = 5
MAX_VOCABULARY = 5_000_000
MAX_HASHED_FEATURES = 1 << 24


def _failed(rules: dict[str, bool]) -> None:
    failed = [rule for rule, ok in rules.items() if not ok]
    if failed:
        raise UnsupportedModelError("; ".join(failed))


def check_text_vectorizer(vectorizer: Any) -> None:
    """What any text vectorizer must be: reading the text it is given (never a file), tokenising it
    in bounded time, with a bounded vocabulary."""
    _failed(
        {
            "input must be 'content'": vectorizer.input == "content",
            "analyzer must be 'word', 'char' or 'char_wb'": vectorizer.analyzer in ("word", "char", "char_wb"),
            "no custom preprocessor or tokenizer": vectorizer.preprocessor is None and vectorizer.tokenizer is None,
            "strip_accents must be None, 'ascii' or 'unicode'": vectorizer.strip_accents in (None, "ascii", "unicode"),
            "encoding must be utf-8": str(vectorizer.encoding).lower().replace("-", "") == "utf8",
        }
    )
    low, high = vectorizer.ngram_range
    if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high <= MAX_NGRAM):
        raise UnsupportedModelError(f"ngram_range must be within (1, {MAX_NGRAM}), not {vectorizer.ngram_range}")
    if vectorizer.analyzer == "word":
        check_token_pattern(vectorizer.token_pattern)


def _check_vocabulary_vectorizer(vectorizer: Any) -> None:
    check_text_vectorizer(vectorizer)
    vocabulary = getattr(vectorizer, "vocabulary_", None)
    if not isinstance(vocabulary, dict):
        raise UnsupportedModelError("the vectorizer must be fitted")
    if len(vocabulary) > MAX_VOCABULARY:
        raise UnsupportedModelError(f"vocabulary of {len(vocabulary)} terms is over {MAX_VOCABULARY}")
    indices = set(vocabulary.values())
    if (
        len(indices) != len(vocabulary)
        or not all(isinstance(j, int | np.integer) for j in indices)
        or (indices and (min(indices) != 0 or max(indices) != len(vocabulary) - 1))
    ):
        raise UnsupportedModelError("the vocabulary's indices are not 0 to its size - 1, each once")
    if getattr(vectorizer, "use_idf", False):
        _check_idf(vectorizer, len(vocabulary))


def _check_hashing_vectorizer(vectorizer: Any) -> None:
    check_text_vectorizer(vectorizer)
    n = vectorizer.n_features
    if not (isinstance(n, int) and 1 <= n <= MAX_HASHED_FEATURES):
        raise UnsupportedModelError(f"n_features must be within 1 and {MAX_HASHED_FEATURES}, not {n}")


def _check_idf(weighting: Any, n_features: int | None) -> None:
    idf = np.asarray(getattr(weighting, "idf_", None))
    if idf.ndim != 1 or (n_features is not None and idf.shape[0] != n_features) or not np.isfinite(idf).all():
        raise UnsupportedModelError("idf_ does not match the vocabulary or is not finite")


def _check_tfidf_transformer(transformer: Any) -> None:
    if transformer.use_idf:
        _check_idf(transformer, None)


def _check_linear(classifier: Any) -> None:
    coef = getattr(classifier, "coef_", None)
    intercept = getattr(classifier, "intercept_", None)
    if not isinstance(coef, np.ndarray) or not isinstance(intercept, np.ndarray | float | int):
        raise UnsupportedModelError("the classifier is not fitted")
    if coef.ndim != 2 or not (np.isfinite(coef).all() and np.isfinite(intercept).all()):
        raise UnsupportedModelError("the classifier's coefficients are not a finite matrix")


def _check_naive_bayes(classifier: Any) -> None:
    log_prob = getattr(classifier, "feature_log_prob_", None)
    if not isinstance(log_prob, np.ndarray) or log_prob.ndim != 2 or not np.isfinite(log_prob).all():
        raise UnsupportedModelError("the classifier is not fitted, or has non-finite log probabilities")


def _check_calibrated(classifier: Any) -> None:
    folds = getattr(classifier, "calibrated_classifiers_", None)
    if not isinstance(folds, list) or not folds:
        raise UnsupportedModelError("the calibrated classifier is not fitted")
    for fold in folds:
        check_step(fold.estimator, role="classifier")


def _check_fitted(step: Any) -> None:
    if not any(name.endswith("_") and not name.startswith("_") for name in vars(step)):
        raise UnsupportedModelError(f"{type(step).__name__} is not fitted")


@dataclass(frozen=True)
class StepSpec:
    """One supported step type.

    `role` is where it may stand: `vectorizer` (first, takes the texts), `weighting` (a
    TfidfTransformer after a vectorizer), `union` (a FeatureUnion of vectorizers), `transformer`
    (between the features and the classifier; served by the Pipeline engine) or `classifier` (last).
    `brings` lists the other types a fitted instance puts in a skops file.
    """

    name: str
    role: str
    check: Callable[[Any], None] = _check_fitted
    featurizer: Callable[[Any, list[featurizers.Weighting]], featurizers.Featurizer] | None = None
    head: classifiers.HeadFactory | None = None
    brings: tuple[str, ...] = field(default_factory=tuple)


_TEXT = "sklearn.feature_extraction.text"
CALIBRATED = "sklearn.calibration.CalibratedClassifierCV"
SPECS: tuple[StepSpec, ...] = (
    StepSpec(f"{_TEXT}.CountVectorizer", "vectorizer", _check_vocabulary_vectorizer, featurizers.vocabulary_featurizer),
    StepSpec(f"{_TEXT}.TfidfVectorizer", "vectorizer", _check_vocabulary_vectorizer, featurizers.vocabulary_featurizer),
    # Our own trainer's vectorizer: TfidfVectorizer with negation marking in its preprocessor only.
    StepSpec(
        "src.model.text_features.NegationTfidfVectorizer",
        "vectorizer",
        _check_vocabulary_vectorizer,
        featurizers.vocabulary_featurizer,
    ),
    # Our trainer's default vectorizer since the sentiment cues: negation, contrast, lexicon tokens.
    StepSpec(
        "src.model.text_features.SentimentCueVectorizer",
        "vectorizer",
        _check_vocabulary_vectorizer,
        featurizers.vocabulary_featurizer,
    ),
    StepSpec(f"{_TEXT}.HashingVectorizer", "vectorizer", _check_hashing_vectorizer, featurizers.hashing_featurizer),
    StepSpec(f"{_TEXT}.TfidfTransformer", "weighting", _check_tfidf_transformer),
    StepSpec("sklearn.pipeline.FeatureUnion", "union", check=lambda union: None),  # its members are checked
    StepSpec("sklearn.preprocessing._data.MaxAbsScaler", "transformer"),
    StepSpec("sklearn.preprocessing._data.Normalizer", "transformer"),
    StepSpec("sklearn.decomposition._truncated_svd.TruncatedSVD", "transformer"),
    StepSpec(
        "sklearn.linear_model._logistic.LogisticRegression", "classifier", _check_linear, head=classifiers.logistic
    ),
    StepSpec("sklearn.svm._classes.LinearSVC", "classifier", _check_linear, head=classifiers.scores_only),
    StepSpec(
        "sklearn.linear_model._ridge.RidgeClassifier",
        "classifier",
        _check_linear,
        head=classifiers.scores_only,
        brings=("sklearn.preprocessing._label.LabelBinarizer",),
    ),
    StepSpec(
        "sklearn.linear_model._stochastic_gradient.SGDClassifier",
        "classifier",
        _check_linear,
        head=classifiers.sgd,
        brings=(
            "sklearn._loss._loss.CyHalfBinomialLoss",
            "sklearn.linear_model._sgd_fast.Hinge",
            "sklearn.linear_model._sgd_fast.SquaredHinge",
            "sklearn.linear_model._sgd_fast.ModifiedHuber",
        ),
    ),
    StepSpec("sklearn.naive_bayes.MultinomialNB", "classifier", _check_naive_bayes, head=classifiers.multinomial_nb),
    StepSpec("sklearn.naive_bayes.ComplementNB", "classifier", _check_naive_bayes, head=classifiers.complement_nb),
    StepSpec(
        CALIBRATED,
        "classifier",
        _check_calibrated,
        head=lambda classifier, n_features: classifiers.calibrated(classifier, n_features, linear_head_for),
        brings=(
            "sklearn.calibration._CalibratedClassifier",
            "sklearn.calibration._SigmoidCalibration",
            "sklearn.isotonic.IsotonicRegression",
        ),
    ),
)
_BY_NAME = {spec.name: spec for spec in SPECS}

# Plain values any model file holds: containers, numbers, strings and arrays.
VALUE_TYPES = (
    "builtins.bool",
    "builtins.dict",
    "builtins.float",
    "builtins.int",
    "builtins.list",
    "builtins.str",
    "builtins.tuple",
    "numpy.dtype",
    "numpy.float32",
    "numpy.float64",
    "numpy.int32",
    "numpy.int64",
    "numpy.ndarray",
    "sklearn.pipeline.Pipeline",
)


def trusted_types() -> list[str]:
    """Every type a model file may name: plain values, the specs' types and what they bring."""
    names: Iterable[str] = (name for spec in SPECS for name in (spec.name, *spec.brings))
    return sorted({*VALUE_TYPES, *names})


def type_name(step: Any) -> str:
    return f"{type(step).__module__}.{type(step).__qualname__}"


def spec_for(step: Any) -> StepSpec | None:
    """The spec of a step's exact type (a subclass is another type), or None."""
    return _BY_NAME.get(type_name(step))


def check_step(step: Any, role: str | None = None) -> StepSpec:
    """The step's spec, after its parameter rules; UnsupportedModelError for an unknown type or role."""
    spec = spec_for(step)
    if spec is None:
        raise UnsupportedModelError(f"{type_name(step)} is not a supported step type")
    if role is not None and spec.role != role:
        raise UnsupportedModelError(f"{type(step).__name__} cannot stand where a {role} is expected")
    spec.check(step)
    return spec


def linear_head_for(classifier: Any) -> classifiers.HeadFactory | None:
    """The compiler of a linear classifier's head (a calibrated model's fold), or None; never another
    calibrated model."""
    spec = spec_for(classifier)
    if spec is None or spec.role != "classifier" or spec.name == CALIBRATED:
        return None
    return spec.head
