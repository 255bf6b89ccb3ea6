"""Live traffic against a reference profile: one statistic, threshold and verdict per signal.

- `length`, `oov`, `score`: the population stability index over the reference's bins,
  PSI = sum((live - reference) * ln(live / reference)). It measures how far the distribution moved,
  not how sure we are that it moved, so its threshold means the same at any window size; 0.25 is the
  conventional line for a significant shift (0.1-0.25 moderate). Live shares carry half a count per
  bin, reference shares at least 1e-4, so an empty bin gives a large but finite figure. Under no
  drift a window of n texts over k bins gives about (k - 1) / n: 0.018 for 500 texts and 10 bins.
- `label`: Pearson's chi-squared test of the window's label counts against the reference shares;
  the threshold is the critical value at the p-value DRIFT_P_VALUE (k - 1 degrees of freedom), so
  `statistic > threshold` is `p < DRIFT_P_VALUE`. Label shares move with what users write about, so
  a strict p-value (0.001 by default) keeps a quiet day from alerting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from scipy.special import chdtrc, chdtri

from src.config import default_of
from src.drift.profile import CONTINUOUS, LABEL, ReferenceProfile

_FLOOR = 1e-4


@dataclass(frozen=True)
class DriftThresholds:
    """When a signal counts as drifting, and how many texts a window needs before any is judged."""

    psi: float = default_of("drift_psi_threshold")
    p_value: float = default_of("drift_p_value")
    min_texts: int = default_of("drift_min_texts")


@dataclass(frozen=True)
class SignalVerdict:
    """One signal's comparison with the reference."""

    test: str  # "psi" or "chi_squared"
    statistic: float
    threshold: float
    drifting: bool
    p_value: float | None = None


@dataclass(frozen=True)
class DriftReport:
    """The window against the reference: `status` is collecting (too few texts), ok or drifting."""

    texts: int
    signals: Mapping[str, SignalVerdict]
    status: str

    @property
    def drifting(self) -> bool:
        """Whether any signal drifts (never while the window is still collecting)."""
        return self.status == "drifting"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of GET /models/{name}/drift's `signals` and verdict."""
        return {
            "status": self.status,
            "drifting": self.drifting,
            "signals": {name: asdict(verdict) for name, verdict in self.signals.items()},
        }


def psi(expected: Sequence[float], counts: Sequence[int]) -> float:
    """The population stability index of live bin counts against the reference's shares."""
    total = sum(counts) + 0.5 * len(counts)
    floor = [max(share, _FLOOR) for share in expected]
    norm = sum(floor)
    value = 0.0
    for share, count in zip(floor, counts, strict=True):
        live, reference = (count + 0.5) / total, share / norm
        value += (live - reference) * math.log(live / reference)
    return value


def chi_squared(expected: Sequence[float], counts: Sequence[int]) -> tuple[float, float]:
    """Pearson's statistic of the counts against the shares, and its p-value."""
    total = sum(counts)
    floor = [max(share, _FLOOR) for share in expected]
    norm = sum(floor)
    statistic = sum(
        (count - total * share / norm) ** 2 / (total * share / norm) for share, count in zip(floor, counts, strict=True)
    )
    return statistic, float(chdtrc(len(counts) - 1, statistic))


def judge(profile: ReferenceProfile, counts: Mapping[str, Sequence[int]], thresholds: DriftThresholds) -> DriftReport:
    """Every signal's verdict for a window's bin counts (per signal, in the profile's bins)."""
    texts = sum(counts[LABEL])
    signals: dict[str, SignalVerdict] = {}
    for name in CONTINUOUS:
        value = psi(profile.expected(name), counts[name]) if texts else 0.0
        signals[name] = SignalVerdict("psi", round(value, 6), thresholds.psi, value > thresholds.psi)
    degrees = max(len(profile.classes) - 1, 1)
    critical = float(chdtri(degrees, thresholds.p_value))
    statistic, p_value = chi_squared(profile.expected(LABEL), counts[LABEL]) if texts else (0.0, 1.0)
    signals[LABEL] = SignalVerdict(
        "chi_squared", round(statistic, 6), round(critical, 6), statistic > critical, p_value=p_value
    )
    if texts < thresholds.min_texts:
        status = "collecting"
    else:
        status = "drifting" if any(v.drifting for v in signals.values()) else "ok"
    return DriftReport(texts, signals, status)
