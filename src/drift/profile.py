"""A version's reference profile: what its inputs and outputs looked like on text it was not trained on.

Made when a version is trained (on the held-out test split) or imported (on the import's test file or
sample), stored in its metadata as `reference_profile`, and compared with live traffic
(src/drift/statistics.py). Four signals, each reduced to bins:
- `length`: words per text, as the model's tokenizer counts them;
- `oov`: the share of those words missing from the model's vocabulary;
- `score`: the winning class's probability (for a model without probabilities, its decision score);
- `label`: the predicted class.
The continuous signals are cut at the reference's deciles, so each bin holds about a tenth of the
reference; values equal to an edge go to the bin above it (`bisect_right`), in the reference and live.

Held-out text, not the training rows: on rows it was fitted to a model is more confident and meets
fewer unknown words than on anything new, so a profile of its training rows would make every new
text look drifted.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CONTINUOUS = ("length", "oov", "score")
LABEL = "label"
SIGNALS = (*CONTINUOUS, LABEL)
QUANTILES = 10
# A stored profile is read from a model's metadata: bounded before it is believed.
MAX_EDGES = 64
MAX_CLASSES = 255  # a label's bin is stored in one byte
MAX_TEXTS = 10**9
MAX_SOURCE_CHARS = 500


class ProfileError(ValueError):
    """A stored reference profile that cannot be used (malformed, or for other classes)."""


@dataclass(frozen=True)
class Histogram:
    """A continuous signal's bin edges (increasing) and the reference's share in each of the len+1 bins."""

    edges: tuple[float, ...]
    shares: tuple[float, ...]

    def bin(self, value: float) -> int:
        """The bin of a value: how many edges are at or below it."""
        return bisect_right(self.edges, value)

    @classmethod
    def of(cls, values: Sequence[float]) -> Histogram:
        """Edges at the values' deciles (repeats merged), shares as the values fall in them."""
        data = np.asarray(values, dtype=np.float64)
        cuts = np.quantile(data, [i / QUANTILES for i in range(1, QUANTILES)], method="lower")
        edges = tuple(float(edge) for edge in np.unique(cuts))
        counts = np.bincount(np.searchsorted(edges, data, side="right"), minlength=len(edges) + 1)
        return cls(edges, tuple(float(count) / len(data) for count in counts))


@dataclass(frozen=True)
class ReferenceProfile:
    """The reference distribution of every signal, and where it was measured."""

    texts: int
    source: str
    histograms: Mapping[str, Histogram]
    classes: tuple[str, ...]
    label_shares: tuple[float, ...]
    # What bins() reads for every text served, taken out of the histograms once.
    _binners: tuple[Callable[[float], int], ...] = field(init=False, repr=False, compare=False)
    _class_index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_binners", tuple(self.histograms[name].bin for name in CONTINUOUS))
        object.__setattr__(self, "_class_index", {label: i for i, label in enumerate(self.classes)})

    @classmethod
    def build(
        cls,
        *,
        lengths: Sequence[int],
        oov: Sequence[float],
        scores: Sequence[float],
        labels: Sequence[str],
        classes: Sequence[str],
        source: str,
    ) -> ReferenceProfile:
        """A profile from one observation per text (in matching order)."""
        if not lengths:
            raise ProfileError("a reference profile needs at least one text")
        if len(classes) > MAX_CLASSES:
            raise ProfileError(f"a reference profile covers at most {MAX_CLASSES} classes, not {len(classes)}")
        index = {label: i for i, label in enumerate(classes)}
        counts = np.bincount([index[label] for label in labels], minlength=len(classes))
        return cls(
            texts=len(lengths),
            source=source,
            histograms={"length": Histogram.of(lengths), "oov": Histogram.of(oov), "score": Histogram.of(scores)},
            classes=tuple(classes),
            label_shares=tuple(float(count) / len(labels) for count in counts),
        )

    def bins(self, length: int, oov: float, score: float, label: str) -> tuple[int, int, int, int]:
        """One text's bin for each signal, in SIGNALS order."""
        length_bin, oov_bin, score_bin = self._binners
        return length_bin(length), oov_bin(oov), score_bin(score), self._class_index[label]

    def expected(self, signal: str) -> tuple[float, ...]:
        """The reference's share in each bin of a signal."""
        return self.label_shares if signal == LABEL else self.histograms[signal].shares

    def to_dict(self) -> dict[str, Any]:
        """The JSON form kept in a version's metadata."""
        return {
            "texts": self.texts,
            "source": self.source,
            "bins": "deciles of the reference; a value equal to an edge goes to the bin above",
            **{name: {"edges": list(h.edges), "shares": list(h.shares)} for name, h in self.histograms.items()},
            LABEL: {"classes": list(self.classes), "shares": list(self.label_shares)},
        }

    @classmethod
    def from_dict(cls, stored: Any, classes: Sequence[str]) -> ReferenceProfile:
        """A profile read back from metadata, checked against the model's classes; ProfileError if unusable."""
        try:
            histograms = {name: _histogram(stored[name]) for name in CONTINUOUS}
            label = stored[LABEL]
            if not isinstance(label["classes"], list) or len(label["classes"]) > MAX_CLASSES:
                raise ValueError(f"classes must be a list of at most {MAX_CLASSES}")
            stored_classes = tuple(str(c) for c in label["classes"])
            shares = _shares(label["shares"], len(stored_classes))
            texts = stored["texts"]
            if isinstance(texts, bool) or not isinstance(texts, int) or not 0 < texts <= MAX_TEXTS:
                raise ValueError(f"texts must be a whole number from 1 to {MAX_TEXTS}")
            source = stored["source"]
            if not isinstance(source, str) or len(source) > MAX_SOURCE_CHARS:
                raise ValueError(f"source must be a string of at most {MAX_SOURCE_CHARS} characters")
            if len(stored_classes) > MAX_CLASSES:
                raise ValueError(f"at most {MAX_CLASSES} classes")
        except (KeyError, TypeError, ValueError, OverflowError) as error:
            raise ProfileError(f"malformed reference profile: {str(error)[:200]}") from None
        if stored_classes != tuple(classes):
            raise ProfileError(f"the reference profile's classes {list(stored_classes)} are not the model's")
        return cls(texts, source, histograms, stored_classes, shares)


def _finite(values: Any, most: int) -> tuple[float, ...]:
    if not isinstance(values, list) or len(values) > most:
        raise ValueError(f"expected a list of at most {most} numbers")
    numbers = tuple(float(v) for v in values)
    if not all(math.isfinite(v) for v in numbers):
        raise ValueError("expected finite numbers")
    return numbers


def _shares(values: Any, count: int) -> tuple[float, ...]:
    shares = _finite(values, max(MAX_EDGES + 1, MAX_CLASSES))
    if len(shares) != count or any(s < 0 for s in shares) or not math.isclose(sum(shares), 1.0, abs_tol=1e-6):
        raise ValueError(f"expected {count} shares summing to 1")
    return shares


def _histogram(stored: Any) -> Histogram:
    edges = _finite(stored["edges"], MAX_EDGES)
    if any(b <= a for a, b in itertools.pairwise(edges)):
        raise ValueError("edges must increase")
    return Histogram(edges, _shares(stored["shares"], len(edges) + 1))
