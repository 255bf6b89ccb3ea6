"""The drift statistics: quiet on the reference's own distribution, loud on a moved one."""

from __future__ import annotations

import random

import pytest
from scipy.stats import chisquare

from src.drift.profile import CONTINUOUS, ReferenceProfile
from src.drift.statistics import DriftThresholds, chi_squared, judge, psi

CLASSES = ["negative", "positive"]


def test_psi_is_zero_for_the_reference_and_grows_with_the_shift() -> None:
    expected = [0.1] * 10
    assert psi(expected, [1000] * 10) == pytest.approx(0.0, abs=1e-6)
    moved = psi(expected, [300, 200, 100, 100, 100, 100, 50, 25, 15, 10])
    assert moved > 0.25
    assert psi(expected, [2000, 0, 0, 0, 0, 0, 0, 0, 0, 0]) > moved  # an empty bin: large, finite


def test_chi_squared_matches_scipy() -> None:
    counts, shares = [230, 270], [0.5, 0.5]
    statistic, p_value = chi_squared(shares, counts)
    reference = chisquare(counts, [sum(counts) * s for s in shares])
    assert statistic == pytest.approx(reference.statistic)
    assert p_value == pytest.approx(reference.pvalue)


def _observe(profile: ReferenceProfile, rng: random.Random, count: int, shift: float) -> dict[str, list[int]]:
    counts = {name: [0] * len(profile.expected(name)) for name in (*CONTINUOUS, "label")}
    for _ in range(count):
        label = CLASSES[0] if rng.random() < 0.5 + shift / 2 else CLASSES[1]
        bins = profile.bins(
            int(rng.randint(20, 400) * (1 - shift)),
            rng.random() * (0.1 + shift),
            rng.uniform(0.5 + 0.5 * shift, 1),
            label,
        )
        for name, index in zip((*CONTINUOUS, "label"), bins, strict=True):
            counts[name][index] += 1
    return counts


def _reference() -> ReferenceProfile:
    rng = random.Random(1)
    n = 5000
    return ReferenceProfile.build(
        lengths=[rng.randint(20, 400) for _ in range(n)],
        oov=[rng.random() * 0.1 for _ in range(n)],
        scores=[rng.uniform(0.5, 1) for _ in range(n)],
        labels=[rng.choice(CLASSES) for _ in range(n)],
        classes=CLASSES,
        source="test",
    )


def test_windows_from_the_reference_distribution_do_not_drift() -> None:
    profile, rng = _reference(), random.Random(2)
    reports = [judge(profile, _observe(profile, rng, 500, 0.0), DriftThresholds()) for _ in range(50)]
    assert not any(report.drifting for report in reports)
    assert max(r.signals["length"].statistic for r in reports) < 0.1  # about (k - 1) / n = 0.018


def test_a_moved_distribution_drifts_on_every_signal() -> None:
    report = judge(_reference(), _observe(_reference(), random.Random(3), 500, 0.6), DriftThresholds())
    assert report.status == "drifting"
    assert all(verdict.drifting for verdict in report.signals.values()), report.to_dict()
    assert report.signals["label"].p_value is not None
    assert report.signals["label"].p_value < 0.001


def test_a_window_below_the_minimum_is_collecting_whatever_it_holds() -> None:
    profile = _reference()
    report = judge(profile, _observe(profile, random.Random(4), 50, 0.6), DriftThresholds(min_texts=200))
    assert report.status == "collecting"
    assert not report.drifting
    assert report.signals["length"].drifting  # the figures are there; the verdict waits
    empty = judge(profile, _observe(profile, random.Random(4), 0, 0.0), DriftThresholds())
    assert empty.texts == 0
    assert empty.status == "collecting"
