"""A fitted text Pipeline compiled into plain-Python scoring, exactly where it is linear.

scikit-learn spends most of a one-text prediction on building sparse matrices. The compiled form
computes the same outputs straight from the fitted objects: the vectorizer's own preprocessor,
tokenizer and analyzer, its vocabulary (shared, not copied) or hashing, each weighting stage, and the
classifier's rows of coefficients (src/engine/featurizers.py, src/engine/classifiers.py). Anything
it does not reproduce exactly raises UnsupportedPipelineError with the reason, and the model is then
served by its Pipeline: a model is never mis-scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sklearn.pipeline import Pipeline

from src.engine.featurizers import (
    Featurizer,
    TermWeights,
    UnionFeaturizer,
    UnsupportedPipelineError,
    Weighting,
    tfidf_stage,
)
from src.engine.fused import FusedLinear
from src.engine.model_types import spec_for
from src.engine.pipeline_checks import union_members

__all__ = ["CompiledScorer", "TermContribution", "TermWeights", "UnsupportedPipelineError"]


@dataclass(frozen=True, slots=True)
class TermContribution:
    """One term of a text: its weight and what it adds to each explained score."""

    term: str
    weight: float
    contributions: list[float]


def _weightings(steps: list[Any]) -> list[Weighting]:
    stages = []
    for step in steps:
        spec = spec_for(step)
        if spec is None or spec.role != "weighting":
            name = type(step).__name__
            raise UnsupportedPipelineError(f"{name} between the features and the classifier is not compiled")
        stages.append(tfidf_stage(step))
    return stages


def _featurizer(steps: list[Any]) -> Featurizer:
    """The first step (a vectorizer or union) and the TfidfTransformers after it, as one featurizer."""
    spec = spec_for(steps[0])
    if spec is not None and spec.role == "union":
        return UnionFeaturizer(
            [(name, _featurizer(member), weight) for name, member, weight in union_members(steps[0])]
        )
    if spec is None or spec.featurizer is None:
        raise UnsupportedPipelineError(f"{type(steps[0]).__name__} is not a compiled vectorizer")
    return spec.featurizer(steps[0], _weightings(steps[1:]))


@dataclass(slots=True)
class Scored:
    """One text's outputs: the predicted class's index, the probabilities (None without them), the raw
    scores, and the text's words and unknown words (for the metrics and the drift window). Not frozen,
    as Prediction is not."""

    winner: int
    probabilities: list[float] | None
    scores: list[float]
    tokens: int
    unknown_tokens: int


class CompiledScorer:
    """Scores texts exactly as the Pipeline's `predict_proba` (or `decision_function`) and `predict` do."""

    def __init__(self, pipeline: Pipeline) -> None:
        steps = [step for _, step in pipeline.steps]
        classifier = steps[-1]
        spec = spec_for(classifier)
        if spec is None or spec.head is None:
            raise UnsupportedPipelineError(f"{type(classifier).__name__} is not a compiled classifier")
        self.featurizer = _featurizer(steps[:-1])
        self.head = spec.head(classifier, self.featurizer.n_features)
        self.classes = self.head.classes
        self.has_probabilities = self.head.probabilities is not None
        # The one-pass form for a binary linear model over a vocabulary (src/engine/fused.py), or None.
        self.fused = FusedLinear.of(self.featurizer, self.head.rows, self.head.intercepts)

    def score(self, text: str) -> Scored:
        """One text, as serving scores it: the one-pass form when the model has one, else step by step."""
        if self.fused is not None:
            decision, tokens, unknown = self.fused.score(text)
            scores = [decision]
        else:
            weighted = self.weigh(text)
            scores, tokens, unknown = self.decision(weighted), weighted.tokens, weighted.unknown_tokens
        head = self.head
        probabilities = head.probabilities(scores) if head.probabilities is not None else None
        return Scored(head.label(scores, probabilities), probabilities, scores, tokens, unknown)

    def weigh(self, text: str) -> TermWeights:
        """The text's feature vector, sparse, weighted as the pipeline would."""
        return self.featurizer.weigh(text)

    def decision(self, weighted: TermWeights) -> list[float]:
        """The classifier's raw scores, one per row (one row for a binary linear model)."""
        features, weights = weighted.features, weighted.weights
        return [
            b + sum(w * row[j] for j, w in zip(features, weights, strict=True))
            for row, b in zip(self.head.rows, self.head.intercepts, strict=True)
        ]

    def outputs(self, weighted: TermWeights) -> tuple[int, list[float] | None, list[float]]:
        """The predicted class's index, the probabilities (None without them) and the raw scores."""
        scores = self.decision(weighted)
        probabilities = self.head.probabilities(scores) if self.head.probabilities is not None else None
        return self.head.label(scores, probabilities), probabilities, scores

    def probabilities(self, weighted: TermWeights) -> list[float]:
        """Probabilities in the order of `classes` (for a model that has them)."""
        _, probabilities, _ = self.outputs(weighted)
        if probabilities is None:
            raise UnsupportedPipelineError("this model gives decision scores, not probabilities")
        return probabilities

    def predict_proba(self, text: str) -> list[float]:
        """Probabilities of one text, in the order of `classes`."""
        return self.probabilities(self.weigh(text))

    @property
    def score_labels(self) -> list[str]:
        """The class each explained score is for: the positive class alone for a binary linear model."""
        return self.head.score_labels

    @property
    def intercepts(self) -> list[float]:
        """The intercept of each explained score."""
        return list(self.head.explained_intercepts)

    def contributions(self, text: str) -> tuple[TermWeights, list[TermContribution]]:
        """The text's weights, and each known term with its exact share of every explained score.

        A term adds `weight * coefficient` to a score; these shares plus the intercepts are the scores.
        """
        weighted, names = self.featurizer.named(text)
        rows = self.head.explained_rows
        return weighted, [
            TermContribution(names[j], w, [w * row[j] for row in rows])
            for j, w in zip(weighted.features, weighted.weights, strict=True)
        ]
