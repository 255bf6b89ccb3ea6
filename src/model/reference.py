"""A version's reference profile (src/drift/profile.py), measured when it is trained or imported."""

from __future__ import annotations

import random
from collections.abc import Sequence

from sklearn.pipeline import Pipeline

from src.drift.profile import ReferenceProfile
from src.engine.observations import observe

# Deciles of a few thousand texts are stable to a percent; more only slows training.
MAX_REFERENCE_TEXTS = 5000


def reference_profile(pipeline: Pipeline, texts: Sequence[str], source: str, *, seed: int = 42) -> ReferenceProfile:
    """The profile of the fitted pipeline on `texts` (held out from its training), at most
    MAX_REFERENCE_TEXTS of them, chosen at random with `seed`."""
    chosen = list(texts)
    if len(chosen) > MAX_REFERENCE_TEXTS:
        chosen = random.Random(seed).sample(chosen, MAX_REFERENCE_TEXTS)
    observations = observe(pipeline, chosen)
    return ReferenceProfile.build(
        lengths=[o.tokens for o in observations],
        oov=[o.oov_rate for o in observations],
        scores=[o.score for o in observations],
        labels=[o.label for o in observations],
        classes=[str(label) for label in pipeline.classes_],
        source=f"{source} ({len(chosen)} texts)",
    )
