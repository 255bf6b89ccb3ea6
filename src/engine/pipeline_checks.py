"""What a loaded Pipeline may be: its shape and every step's parameters, not only its classes.

Trusted types constrain which classes a model file builds, not how they are configured or put
together. A TfidfVectorizer with `input='filename'` would open and read any path a client sends as
text, a `token_pattern` with nested quantifiers can take seconds on a short text, and a pipeline
that starts with a classifier expects numbers, not texts. Each model is checked here before it
is published or served; anything else is refused like an untrusted type.
"""

from __future__ import annotations

import math
from typing import Any

from sklearn.pipeline import FeatureUnion, Pipeline

from src.engine.model_types import check_step, spec_for, type_name
from src.engine.token_patterns import UnsupportedModelError

__all__ = ["UnsupportedModelError", "check_pipeline", "union_members"]


def union_members(union: FeatureUnion) -> list[tuple[str, list[Any], float]]:
    """A FeatureUnion's members: name, steps (a vectorizer, then any TfidfTransformers) and weight."""
    weights = union.transformer_weights or {}
    members = []
    for name, member in union.transformer_list:
        steps = [step for _, step in member.steps] if isinstance(member, Pipeline) else [member]
        weight = weights.get(name, 1.0)
        if not isinstance(weight, int | float) or not math.isfinite(weight):
            raise UnsupportedModelError(f"the FeatureUnion's weight for {name!r} is not a finite number")
        members.append((str(name), steps, float(weight)))
    return members


def _check_text_input(step: Any) -> None:
    """The first step must take texts: a text vectorizer, or a FeatureUnion of them."""
    spec = spec_for(step)
    if spec is None or spec.role not in ("vectorizer", "union"):
        raise UnsupportedModelError(
            f"the pipeline expects numbers rather than texts: its first step is {type(step).__name__}, "
            "not a text vectorizer (CountVectorizer, TfidfVectorizer, HashingVectorizer or a FeatureUnion of them)"
        )
    check_step(step)
    if spec.role == "union":
        members = union_members(step)
        if not members:
            raise UnsupportedModelError("the FeatureUnion is empty")
        for _, steps, _ in members:
            check_step(steps[0], role="vectorizer")
            for weighting in steps[1:]:
                check_step(weighting, role="weighting")


def check_pipeline(pipeline: Pipeline) -> None:
    """Raise UnsupportedModelError unless the pipeline takes texts, is made of supported steps whose
    parameters are safe, and ends with a fitted classifier of two classes or more."""
    if not isinstance(pipeline, Pipeline):
        raise UnsupportedModelError(f"the model must be a scikit-learn Pipeline, not {type_name(pipeline)}")
    steps = [step for _, step in pipeline.steps]
    if len(steps) < 2:
        raise UnsupportedModelError("the pipeline must have a text vectorizer and a classifier")
    _check_text_input(steps[0])
    for step in steps[1:-1]:
        spec = check_step(step)
        if spec.role not in ("weighting", "transformer"):
            raise UnsupportedModelError(f"{type(step).__name__} cannot stand between the features and the classifier")
    check_step(steps[-1], role="classifier")
    classes = getattr(steps[-1], "classes_", None)
    if classes is None or len(classes) < 2:
        raise UnsupportedModelError("the classifier has fewer than two classes")
