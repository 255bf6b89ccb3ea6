"""A fitted TF-IDF + logistic-regression Pipeline compiled into plain-Python scoring.

scikit-learn spends most of a one-text prediction on building sparse matrices. The compiled form
computes the same probabilities straight from the fitted objects: the vectorizer's own preprocessor
and tokenizer, its vocabulary (shared, not copied), its idf, and the classifier's coefficients.
Options it does not reproduce exactly are refused with a reason, so a model is never mis-scored.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from src.model.text_features import NegationTfidfVectorizer

# The vectorizers whose preprocessor and tokenizer the scorer calls as they are: subclasses that
# change anything else (the analyzer, the weighting) would not be reproduced, so each is listed.
_VECTORIZERS = (TfidfVectorizer, NegationTfidfVectorizer)


class UnsupportedPipelineError(Exception):
    """The pipeline uses an option the compiler cannot reproduce exactly."""


@dataclass(frozen=True, slots=True)
class TermContribution:
    """One term of a text: its TF-IDF weight and what it adds to each decision score."""

    term: str
    weight: float
    contributions: list[float]


@dataclass(frozen=True, slots=True)
class TermWeights:
    """A text as the model sees it: known feature indices with their final TF-IDF weights."""

    features: list[int]
    weights: list[float]
    tokens: int
    unknown_tokens: int


def _expit(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _softmax(scores: list[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def _check_supported(pipeline: Pipeline) -> tuple[TfidfVectorizer, LogisticRegression]:
    steps = [step for _, step in pipeline.steps]
    if len(steps) != 2 or type(steps[0]) not in _VECTORIZERS or type(steps[1]) is not LogisticRegression:
        names = " -> ".join(type(step).__name__ for step in steps)
        raise UnsupportedPipelineError(
            f"only TfidfVectorizer (or NegationTfidfVectorizer) -> LogisticRegression compiles, not {names}"
        )
    vectorizer, classifier = steps
    checks = {
        "analyzer must be 'word'": vectorizer.analyzer == "word",
        "input must be 'content'": vectorizer.input == "content",
        "dtype must be float64": np.dtype(vectorizer.dtype) == np.float64,
        "norm must be 'l1', 'l2' or None": vectorizer.norm in ("l1", "l2", None),
        "the vectorizer must be fitted": hasattr(vectorizer, "vocabulary_"),
        "the classifier must be fitted": hasattr(classifier, "coef_"),
    }
    failed = [rule for rule, ok in checks.items() if not ok]
    if failed:
        raise UnsupportedPipelineError("; ".join(failed))
    if classifier.coef_.shape[1] != len(vectorizer.vocabulary_):
        raise UnsupportedPipelineError("the classifier's coefficients do not match the vocabulary size")
    return vectorizer, classifier


class CompiledScorer:
    """Scores texts exactly as `pipeline.predict_proba` does, without scikit-learn's per-call overhead."""

    def __init__(self, pipeline: Pipeline) -> None:
        vectorizer, classifier = _check_supported(pipeline)
        self.classes: list[str] = [str(label) for label in classifier.classes_]
        self._preprocess = vectorizer.build_preprocessor()
        self._tokenize = vectorizer.build_tokenizer()
        stop_words = vectorizer.get_stop_words()
        self._stop_words = frozenset(stop_words) if stop_words else None
        self._min_n, self._max_n = vectorizer.ngram_range
        self._vocabulary: dict[str, int] = vectorizer.vocabulary_  # shared with the pipeline, not copied
        self._binary = bool(vectorizer.binary)
        self._sublinear = bool(vectorizer.sublinear_tf)
        self._norm = vectorizer.norm
        n_features = len(self._vocabulary)
        idf = vectorizer.idf_ if vectorizer.use_idf else np.ones(n_features)
        self._idf = array("d", idf.astype(np.float64))
        self._coef = [array("d", row.astype(np.float64)) for row in classifier.coef_]
        self._intercept = [float(b) for b in np.broadcast_to(classifier.intercept_, (len(self._coef),))]

    def _terms(self, text: str) -> tuple[list[str], int]:
        """The text's n-grams as the vectorizer's analyzer makes them, and its number of words."""
        tokens = self._tokenize(self._preprocess(text))
        if self._stop_words is not None:
            tokens = [t for t in tokens if t not in self._stop_words]
        n = len(tokens)
        terms = list(tokens) if self._min_n == 1 else []
        for size in range(max(self._min_n, 2), min(self._max_n, n) + 1):
            terms += [" ".join(tokens[i : i + size]) for i in range(n - size + 1)]
        return terms, n

    def weigh(self, text: str) -> TermWeights:
        """The text's TF-IDF vector, sparse, normalised as the vectorizer would."""
        return self._weigh(*self._terms(text))

    def _weigh(self, terms: list[str], n_tokens: int) -> TermWeights:
        indices = list(map(self._vocabulary.get, terms))
        # Words come first among the terms when unigrams are features; the share of unknown words
        # (not n-grams) is what says inputs drift away from the training data.
        unknown = indices[:n_tokens].count(None) if self._min_n == 1 else 0
        counts = Counter(indices)
        counts.pop(None, None)
        idf = self._idf
        features: list[int] = list(counts)  # type: ignore[arg-type]  # None was popped
        if self._binary:
            weights = [idf[j] for j in features]
        elif self._sublinear:
            weights = [(1.0 + math.log(counts[j])) * idf[j] for j in features]
        else:
            weights = [counts[j] * idf[j] for j in features]
        if self._norm == "l2":
            norm = math.sqrt(sum(w * w for w in weights))
        elif self._norm == "l1":
            norm = sum(abs(w) for w in weights)
        else:
            norm = 1.0
        if norm > 0.0:
            weights = [w / norm for w in weights]
        return TermWeights(features, weights, n_tokens, unknown)

    def decision(self, weighted: TermWeights) -> list[float]:
        """The classifier's decision score per coefficient row (one row for a binary model)."""
        return [
            b + sum(w * row[j] for j, w in zip(weighted.features, weighted.weights, strict=True))
            for row, b in zip(self._coef, self._intercept, strict=True)
        ]

    @property
    def score_labels(self) -> list[str]:
        """The class each decision score is for: the positive class alone for a binary model."""
        return self.classes[1:] if len(self._coef) == 1 else self.classes

    @property
    def intercepts(self) -> list[float]:
        """The intercept of each decision score."""
        return list(self._intercept)

    def contributions(self, text: str) -> tuple[TermWeights, list[TermContribution]]:
        """The text's weights, and each known term with its exact share of every decision score.

        A term adds `weight * coefficient` to a score; these shares plus the intercepts are the scores.
        """
        terms, n_tokens = self._terms(text)
        weighted = self._weigh(terms, n_tokens)
        names = {self._vocabulary[term]: term for term in terms if term in self._vocabulary}
        return weighted, [
            TermContribution(names[j], w, [w * row[j] for row in self._coef])
            for j, w in zip(weighted.features, weighted.weights, strict=True)
        ]

    def probabilities(self, weighted: TermWeights) -> list[float]:
        """Probabilities in the order of `classes`: the sigmoid for two classes, softmax for more."""
        scores = self.decision(weighted)
        if len(scores) == 1:
            positive = _expit(scores[0])
            return [1.0 - positive, positive]
        return _softmax(scores)

    def predict_proba(self, text: str) -> list[float]:
        """Probabilities of one text, in the order of `classes`."""
        return self.probabilities(self.weigh(text))
