"""One pass from a text's terms to a binary linear model's score, for the common case of serving.

A vocabulary vectorizer with at most one weighting stage (TfidfVectorizer, or CountVectorizer alone)
before a linear classifier with one row of coefficients (a binary LogisticRegression, LinearSVC,
SGDClassifier, RidgeClassifier) needs no feature vector at all to be scored: its score is

    b + sum_j w_j * idf_j * coef_j / norm(w * idf)

so the idf and each coefficient are multiplied once, at load (`idf_coef`), and a text costs one loop
over its distinct known terms, as the reference limit's scorer does. The result equals the
step-by-step scorer's (src/engine/compiled.py) to rounding, far inside the 1e-9 the parity check
holds every compiled model to. Explanations still go through the step-by-step scorer, which names
every term.
"""

from __future__ import annotations

import math
from array import array
from typing import Any

from src.engine.featurizers import VocabularyFeaturizer, Weighting


class FusedLinear:
    """A binary linear model over a vocabulary vectorizer, scored in one pass per text."""

    def __init__(self, featurizer: VocabularyFeaturizer, row: array[float], intercept: float) -> None:
        stage = featurizer.stages[0] if featurizer.stages else Weighting()
        self._analysis = featurizer.analysis
        self._lookup = featurizer.vocabulary.get
        self._counts_words = featurizer.analysis.counts_words()
        self._binary, self._sublinear, self._norm = stage.binary, stage.sublinear, stage.norm
        idf = stage.idf
        self._idf = idf
        self._idf_coef = row if idf is None else array("d", (i * c for i, c in zip(idf, row, strict=True)))
        self._intercept = intercept

    @classmethod
    def of(cls, featurizer: Any, rows: list[array[float]], intercepts: list[float]) -> FusedLinear | None:
        """The fused form of a compiled model, or None when it is not of the shape this covers."""
        if not isinstance(featurizer, VocabularyFeaturizer) or len(featurizer.stages) > 1 or len(rows) != 1:
            return None
        return cls(featurizer, rows[0], intercepts[0])

    def score(self, text: str) -> tuple[float, int, int]:
        """The text's decision score, its number of words, and how many of them the vocabulary lacks."""
        terms, n_tokens = self._analysis.terms(text)
        indices = list(map(self._lookup, terms))
        unknown = indices[:n_tokens].count(None) if self._counts_words else 0
        counts: dict[Any, int] = {}  # feature indices, once None (unknown terms) is popped
        seen = counts.get
        for j in indices:  # for a sentence's few terms, cheaper than collections.Counter
            counts[j] = seen(j, 0) + 1
        counts.pop(None, None)
        idf, idf_coef, l2 = self._idf, self._idf_coef, self._norm == "l2"
        binary, sublinear, log = self._binary, self._sublinear, math.log
        total = dot = 0.0
        for j, count in counts.items():
            w = 1.0 if binary else (1.0 + log(count) if sublinear else float(count))
            x = w if idf is None else w * idf[j]
            total += x * x if l2 else abs(x)
            dot += w * idf_coef[j]
        if self._norm is None:
            return self._intercept + dot, n_tokens, unknown
        norm = math.sqrt(total) if l2 else total
        return self._intercept + (dot / norm if norm > 0.0 else 0.0), n_tokens, unknown
