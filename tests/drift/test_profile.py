"""A reference profile: deciles of what the model saw, kept in metadata, refused when malformed."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from src.drift.profile import MAX_EDGES, Histogram, ProfileError, ReferenceProfile

CLASSES = ["negative", "positive"]


def _profile(seed: int = 0, count: int = 3000) -> ReferenceProfile:
    rng = random.Random(seed)
    return ReferenceProfile.build(
        lengths=[rng.randint(1, 400) for _ in range(count)],
        oov=[0.0 if rng.random() < 0.4 else rng.random() * 0.3 for _ in range(count)],
        scores=[rng.uniform(0.5, 1.0) for _ in range(count)],
        labels=[rng.choice(CLASSES) for _ in range(count)],
        classes=CLASSES,
        source="test",
    )


def test_deciles_hold_a_tenth_each_and_repeated_values_share_one_bin() -> None:
    profile = _profile()
    length = profile.histograms["length"]
    assert len(length.edges) == 9
    assert all(0.07 < share < 0.13 for share in length.shares[1:])  # bin 0 (below the first edge) is empty
    oov = profile.histograms["oov"]
    assert oov.edges[0] == 0.0  # 40% zeros: the first deciles merge into one edge
    assert oov.shares[oov.bin(0.0)] == pytest.approx(0.4, abs=0.03)
    assert sum(profile.label_shares) == pytest.approx(1.0)


def test_a_value_on_an_edge_goes_to_the_bin_above() -> None:
    histogram = Histogram((1.0, 2.0), (0.2, 0.3, 0.5))
    assert [histogram.bin(v) for v in (0.5, 1.0, 1.5, 2.0, 9.0)] == [0, 1, 1, 2, 2]


def test_the_profile_survives_json_metadata() -> None:
    profile = _profile()
    assert ReferenceProfile.from_dict(json.loads(json.dumps(profile.to_dict())), CLASSES) == profile


def _broken(change: Any) -> dict[str, Any]:
    stored = _profile().to_dict()
    change(stored)
    return stored


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d.pop("score"), "malformed"),
        (lambda d: d["length"].update(edges=[3.0, 2.0], shares=[0.3, 0.3, 0.4]), "increase"),
        (lambda d: d["length"].update(edges=list(range(MAX_EDGES + 1))), "at most"),
        (lambda d: d["oov"].update(shares=[1.0] * len(d["oov"]["shares"])), "summing to 1"),
        (lambda d: d["score"].update(edges=[float("nan")], shares=[0.5, 0.5]), "finite"),
        (lambda d: d["label"].update(classes=["neg", "pos"]), "not the model's"),
        (lambda d: d.update(texts="many"), "malformed"),
    ],
)
def test_a_malformed_profile_is_refused_with_its_reason(change: Any, reason: str) -> None:
    with pytest.raises(ProfileError, match=reason):
        ReferenceProfile.from_dict(_broken(change), CLASSES)


def test_bins_follow_the_reference() -> None:
    profile = _profile()
    low = profile.bins(1, 0.0, 0.5, "negative")
    high = profile.bins(10_000, 1.0, 1.0, "positive")
    assert low[3] == 0
    assert high[3] == 1
    assert all(h > lo for h, lo in zip(high[:3], low[:3], strict=True))
    assert high[0] == len(profile.histograms["length"].edges)
