"""What a loaded Pipeline may be configured to do: its parameters, not only its classes.

Trusted types constrain which classes a model file builds, not how they are configured. A
TfidfVectorizer with `input='filename'` would open and read any path a client sends as text, and a
`token_pattern` with nested quantifiers can take seconds on a short text. Each model is checked
against what the service supports before it is served; anything else is refused like an untrusted
type.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

MAX_NGRAM = 5
MAX_VOCABULARY = 5_000_000
# A token pattern must tokenise each probe below within this budget, at every length tried.
PATTERN_BUDGET_SECONDS = 0.02
_PROBE_LENGTHS = (8, 12, 16, 20, 24, 32, 64, 256, 1024, 4096)
_PROBES: tuple[Callable[[int], str], ...] = (
    lambda n: "a" * n + "!",
    lambda n: "ab " * (n // 3) + "!",
    lambda n: " " * n + "a",
    lambda n: "1" * n + "x",
    lambda n: "a_" * (n // 2) + "-",
    lambda n: "\u00e9" * n + ".",
)


class UnsupportedModelError(Exception):
    """The model is configured in a way the service does not serve."""


def _check_token_pattern(pattern: str) -> None:
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise UnsupportedModelError(f"token_pattern does not compile ({error})") from None
    if compiled.groups > 1:
        raise UnsupportedModelError("token_pattern has more than one capturing group")
    # Try growing pathological inputs; catastrophic backtracking shows as a sudden slowdown on a
    # short one, so the trial stops there instead of hanging the process on a long one.
    for probe in _PROBES:
        for length in _PROBE_LENGTHS:
            text = probe(length)
            started = time.perf_counter()
            compiled.findall(text)
            elapsed = time.perf_counter() - started
            if elapsed > PATTERN_BUDGET_SECONDS:
                raise UnsupportedModelError(
                    f"token_pattern {pattern!r} took {elapsed * 1000:.0f} ms on {len(text)} characters "
                    "(catastrophic backtracking)"
                )


def _check_vectorizer(vectorizer: TfidfVectorizer) -> None:
    rules = {
        "input must be 'content'": vectorizer.input == "content",
        "analyzer must be 'word', 'char' or 'char_wb'": vectorizer.analyzer in ("word", "char", "char_wb"),
        "no custom preprocessor or tokenizer": vectorizer.preprocessor is None and vectorizer.tokenizer is None,
        "strip_accents must be None, 'ascii' or 'unicode'": vectorizer.strip_accents in (None, "ascii", "unicode"),
        "encoding must be utf-8": str(vectorizer.encoding).lower().replace("-", "") == "utf8",
        "the vectorizer must be fitted": isinstance(getattr(vectorizer, "vocabulary_", None), dict),
    }
    failed = [rule for rule, ok in rules.items() if not ok]
    if failed:
        raise UnsupportedModelError("; ".join(failed))
    low, high = vectorizer.ngram_range
    if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high <= MAX_NGRAM):
        raise UnsupportedModelError(f"ngram_range must be within (1, {MAX_NGRAM}), not {vectorizer.ngram_range}")
    if len(vectorizer.vocabulary_) > MAX_VOCABULARY:
        raise UnsupportedModelError(f"vocabulary of {len(vectorizer.vocabulary_)} terms is over {MAX_VOCABULARY}")
    if vectorizer.analyzer == "word":
        _check_token_pattern(vectorizer.token_pattern)


def _check_classifier(classifier: LogisticRegression, n_features: int) -> None:
    coef = getattr(classifier, "coef_", None)
    intercept = getattr(classifier, "intercept_", None)
    if not isinstance(coef, np.ndarray) or not isinstance(intercept, np.ndarray):
        raise UnsupportedModelError("the classifier is not fitted")
    if coef.ndim != 2 or coef.shape[1] != n_features:
        raise UnsupportedModelError(f"coefficients of shape {coef.shape} do not match {n_features} features")
    if not (np.isfinite(coef).all() and np.isfinite(intercept).all()):
        raise UnsupportedModelError("the classifier has non-finite coefficients")
    if len(classifier.classes_) < 2:
        raise UnsupportedModelError("the classifier has fewer than two classes")


def check_pipeline(pipeline: Pipeline) -> None:
    """Raise UnsupportedModelError unless the pipeline is a vectorizer and a classifier we serve."""
    steps = [step for _, step in pipeline.steps]
    if len(steps) != 2 or not isinstance(steps[0], TfidfVectorizer) or type(steps[1]) is not LogisticRegression:
        names = " -> ".join(type(step).__name__ for step in steps)
        raise UnsupportedModelError(f"the pipeline must be a TF-IDF vectorizer then LogisticRegression, not {names}")
    vectorizer, classifier = steps
    _check_vectorizer(vectorizer)
    _check_classifier(classifier, len(vectorizer.vocabulary_))
    if vectorizer.use_idf:
        idf = np.asarray(vectorizer.idf_)
        if idf.shape != (len(vectorizer.vocabulary_),) or not np.isfinite(idf).all():
            raise UnsupportedModelError("idf_ does not match the vocabulary or is not finite")
