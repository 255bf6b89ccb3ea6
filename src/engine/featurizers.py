"""A text into its sparse feature vector, computed as the fitted scikit-learn vectorizers compute it.

The vectorizer's own preprocessor, tokenizer and analyzer make the terms; what this module does
without scikit-learn is the rest: looking terms up (a vocabulary, or the hashing trick), counting,
and each weighting stage (binary, sublinear tf, idf, normalisation), so a one-text prediction
never builds a sparse matrix. Options it cannot reproduce exactly raise UnsupportedPipelineError,
and the model is then served by its Pipeline instead.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from sklearn.utils import murmurhash3_32


class UnsupportedPipelineError(Exception):
    """The pipeline uses an option the compiler cannot reproduce exactly."""


@dataclass(frozen=True, slots=True)
class TermWeights:
    """A text as the model sees it: feature indices with their final weights, and its word counts."""

    features: list[int]
    weights: list[float]
    tokens: int
    unknown_tokens: int


class Featurizer(Protocol):
    """Text in, weighted features out; `named` also says which term each feature came from."""

    n_features: int
    words: bool

    def weigh(self, text: str) -> TermWeights: ...

    def named(self, text: str) -> tuple[TermWeights, dict[int, str]]: ...


@dataclass(frozen=True, slots=True)
class Weighting:
    """One weighting stage, applied in this order: binary, sublinear tf, idf, norm."""

    binary: bool = False
    sublinear: bool = False
    idf: array[float] | None = None
    norm: str | None = None

    def apply(self, features: list[int], weights: list[float]) -> list[float]:
        idf, log = self.idf, math.log
        # One pass per case: this runs for every text scored.
        if idf is None:
            if self.binary:
                weights = [1.0] * len(weights)
            elif self.sublinear:
                weights = [1.0 + log(w) for w in weights]
        elif self.binary:
            weights = [idf[j] for j in features]
        elif self.sublinear:
            weights = [(1.0 + log(w)) * idf[j] for j, w in zip(features, weights, strict=True)]
        else:
            weights = [w * idf[j] for j, w in zip(features, weights, strict=True)]
        if self.norm == "l2":
            norm = math.sqrt(sum(w * w for w in weights))
        elif self.norm == "l1":
            norm = sum(abs(w) for w in weights)
        else:
            return weights
        return [w / norm for w in weights] if norm > 0.0 else weights


def tfidf_stage(transformer: Any) -> Weighting:
    """A fitted TfidfTransformer's (or TfidfVectorizer's) weighting, binary aside."""
    if transformer.norm not in ("l1", "l2", None):
        raise UnsupportedPipelineError(f"norm must be 'l1', 'l2' or None, not {transformer.norm!r}")
    idf = array("d", np.asarray(transformer.idf_, dtype=np.float64)) if transformer.use_idf else None
    return Weighting(sublinear=bool(transformer.sublinear_tf), idf=idf, norm=transformer.norm)


class Analysis:
    """How a vectorizer turns a text into terms, and how many words (or characters n-grams) it has."""

    def __init__(self, vectorizer: Any) -> None:
        if vectorizer.input != "content":
            raise UnsupportedPipelineError("input must be 'content'")
        self.words = vectorizer.analyzer == "word"
        # A vectorizer whose preprocessor appends terms after the text (SentimentCueVectorizer) gives it
        # as (text, appended); only the text's own words are counted (and their unknown share).
        split = getattr(vectorizer, "build_split_preprocessor", None)
        self._split = split() if self.words and callable(split) else None
        if self.words:
            self._preprocess = vectorizer.build_preprocessor()
            self._tokenize = vectorizer.build_tokenizer()
            stop_words = vectorizer.get_stop_words()
            self._stop_words = frozenset(stop_words) if stop_words else None
            self._min_n, self._max_n = vectorizer.ngram_range
        elif vectorizer.analyzer in ("char", "char_wb"):
            self._analyze = vectorizer.build_analyzer()
        else:
            raise UnsupportedPipelineError(f"analyzer must be 'word', 'char' or 'char_wb', not {vectorizer.analyzer!r}")

    def terms(self, text: str) -> tuple[list[str], int]:
        """The text's terms in the vectorizer's order, and its number of words (of terms, for characters)."""
        if not self.words:
            terms: list[str] = self._analyze(text)
            return terms, len(terms)
        appended = 0
        if self._split is None:
            tokens = self._tokenize(self._preprocess(text))
        else:
            own, tail = self._split(text)
            tokens = self._tokenize(own + tail)  # exactly what the preprocessor gives
            appended = len(self._tokenize(tail)) if tail else 0
        if self._stop_words is not None:
            tokens = [t for t in tokens if t not in self._stop_words]
        n = len(tokens)
        terms = list(tokens) if self._min_n == 1 else []
        for size in range(max(self._min_n, 2), min(self._max_n, n) + 1):
            terms += [" ".join(tokens[i : i + size]) for i in range(n - size + 1)]
        # The text's own words come first (the appended tokens follow), so the first n - appended terms
        # are its words: a count for the metrics only, never a feature.
        return terms, max(n - appended, 0)

    def counts_words(self) -> bool:
        """Whether the first terms are the words themselves (unigrams), so unknown words can be counted."""
        return not self.words or self._min_n == 1


def _check_dtype(vectorizer: Any, allowed: Sequence[type]) -> None:
    if np.dtype(vectorizer.dtype) not in [np.dtype(kind) for kind in allowed]:
        raise UnsupportedPipelineError(f"dtype must be float64, not {np.dtype(vectorizer.dtype)}")


class VocabularyFeaturizer:
    """CountVectorizer or TfidfVectorizer (or a subclass that only changes its preprocessor), then
    any TfidfTransformer after it."""

    def __init__(self, vectorizer: Any, stages: Sequence[Weighting]) -> None:
        self._analysis = Analysis(vectorizer)
        self.words = self._analysis.words
        self._vocabulary: dict[str, int] = vectorizer.vocabulary_  # shared with the pipeline, not copied
        self.n_features = len(self._vocabulary)
        self._stages = [stage for stage in stages if stage != Weighting()]

    @property
    def analysis(self) -> Analysis:
        """How a text becomes terms."""
        return self._analysis

    @property
    def vocabulary(self) -> dict[str, int]:
        """Each term's feature index (the vectorizer's own dict)."""
        return self._vocabulary

    @property
    def stages(self) -> list[Weighting]:
        """The weighting stages after counting, in order (the identity ones left out)."""
        return self._stages

    def _weigh(self, terms: list[str], n_tokens: int) -> TermWeights:
        indices = list(map(self._vocabulary.get, terms))
        # Words come first among the terms when unigrams are features; the share of unknown words
        # (not n-grams) is what says inputs drift away from the training data.
        unknown = indices[:n_tokens].count(None) if self._analysis.counts_words() else 0
        counts = Counter(indices)
        counts.pop(None, None)
        features: list[int] = list(counts)  # type: ignore[arg-type]  # None was popped
        weights = [float(counts[j]) for j in features]
        for stage in self._stages:
            weights = stage.apply(features, weights)
        return TermWeights(features, weights, n_tokens, unknown)

    def weigh(self, text: str) -> TermWeights:
        return self._weigh(*self._analysis.terms(text))

    def named(self, text: str) -> tuple[TermWeights, dict[int, str]]:
        terms, n_tokens = self._analysis.terms(text)
        vocabulary = self._vocabulary
        return self._weigh(terms, n_tokens), {vocabulary[t]: t for t in terms if t in vocabulary}


def _hashed(term: str, n_features: int) -> tuple[int, int]:
    """The column and sign HashingVectorizer gives a term (sklearn/feature_extraction/_hashing_fast.pyx)."""
    h = murmurhash3_32(term, seed=0)
    index = (2147483647 - (n_features - 1)) % n_features if h == -2147483648 else abs(h) % n_features
    return index, (1 if h >= 0 else -1)


class HashingFeaturizer:
    """HashingVectorizer, then any TfidfTransformer after it. No vocabulary, so no word is unknown."""

    def __init__(self, vectorizer: Any, stages: Sequence[Weighting]) -> None:
        self._analysis = Analysis(vectorizer)
        self.words = self._analysis.words
        self.n_features = int(vectorizer.n_features)
        self._alternate = bool(vectorizer.alternate_sign)
        if self._alternate and any(stage.sublinear and not stage.binary for stage in stages):
            # Signed sums can be zero or negative, where sublinear tf takes a logarithm.
            raise UnsupportedPipelineError("sublinear_tf after a HashingVectorizer with alternate_sign")
        self._stages = [stage for stage in stages if stage != Weighting()]

    def _weigh(self, terms: list[str], n_tokens: int) -> tuple[TermWeights, dict[int, str]]:
        sums: dict[int, float] = {}
        names: dict[int, str] = {}
        n, alternate = self.n_features, self._alternate
        for term in terms:
            index, sign = _hashed(term, n)
            # A column whose signed terms cancel out stays in the row (as scikit-learn keeps it).
            sums[index] = sums.get(index, 0.0) + (sign if alternate else 1)
            names.setdefault(index, term)
        features = list(sums)
        weights = list(sums.values())
        for stage in self._stages:
            weights = stage.apply(features, weights)
        return TermWeights(features, weights, n_tokens, 0), names

    def weigh(self, text: str) -> TermWeights:
        return self._weigh(*self._analysis.terms(text))[0]

    def named(self, text: str) -> tuple[TermWeights, dict[int, str]]:
        return self._weigh(*self._analysis.terms(text))


class UnionFeaturizer:
    """A FeatureUnion of featurizers: their columns side by side, each scaled by its transformer weight.

    The word counts (and unknown words) are the first word-level member's, or the first member's.
    """

    def __init__(self, members: Sequence[tuple[str, Featurizer, float]]) -> None:
        self._members: list[tuple[str, Featurizer, int, float]] = []
        offset = 0
        for name, featurizer, weight in members:
            self._members.append((name, featurizer, offset, weight))
            offset += featurizer.n_features
        self.n_features = offset
        words = [k for k, (_, f, _, _) in enumerate(self._members) if f.words]
        self._counted = words[0] if words else 0
        self.words = bool(words)

    def _join(self, parts: list[tuple[TermWeights, dict[int, str]]], named: bool) -> tuple[TermWeights, dict[int, str]]:
        features: list[int] = []
        weights: list[float] = []
        names: dict[int, str] = {}
        for (name, _, offset, scale), (weighted, member_names) in zip(self._members, parts, strict=True):
            features += [offset + j for j in weighted.features]
            weights += [w * scale for w in weighted.weights] if scale != 1.0 else weighted.weights
            if named:
                names.update({offset + j: f"{name}:{term}" for j, term in member_names.items()})
        counted = parts[self._counted][0]
        return TermWeights(features, weights, counted.tokens, counted.unknown_tokens), names

    def weigh(self, text: str) -> TermWeights:
        return self._join([(f.weigh(text), {}) for _, f, _, _ in self._members], named=False)[0]

    def named(self, text: str) -> tuple[TermWeights, dict[int, str]]:
        return self._join([f.named(text) for _, f, _, _ in self._members], named=True)


def vocabulary_featurizer(vectorizer: Any, after: Sequence[Weighting]) -> VocabularyFeaturizer:
    """CountVectorizer (its counts, or 1 when binary) or TfidfVectorizer (then its tf-idf weighting)."""
    if hasattr(vectorizer, "use_idf"):
        _check_dtype(vectorizer, [np.float64])
        first = tfidf_stage(vectorizer)
        first = Weighting(binary=bool(vectorizer.binary), sublinear=first.sublinear, idf=first.idf, norm=first.norm)
    else:
        _check_dtype(vectorizer, [np.int64, np.int32, np.float64])
        first = Weighting(binary=bool(vectorizer.binary))
    return VocabularyFeaturizer(vectorizer, [first, *after])


def hashing_featurizer(vectorizer: Any, after: Sequence[Weighting]) -> HashingFeaturizer:
    """HashingVectorizer: signed (or plain) hashed counts, binary, then its own norm."""
    _check_dtype(vectorizer, [np.float64])
    if vectorizer.norm not in ("l1", "l2", None):
        raise UnsupportedPipelineError(f"norm must be 'l1', 'l2' or None, not {vectorizer.norm!r}")
    first = Weighting(binary=bool(vectorizer.binary), norm=vectorizer.norm)
    return HashingFeaturizer(vectorizer, [first, *after])


FeaturizerFactory = Callable[[Any, Sequence[Weighting]], Featurizer]
