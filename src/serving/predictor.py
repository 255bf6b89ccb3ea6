"""The serving-side model: a verified stored model, scored by its compiled form when it has one."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from src.errors import NotExplainableError
from src.serving.compiled import CompiledScorer, TermWeights, UnsupportedPipelineError
from src.serving.explanation import Explanation, explain
from src.store.store import StoredModel

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Prediction:
    """One text's result: the winning label, every class's probability, and what the model saw."""

    label: str
    probabilities: dict[str, float]
    tokens: int
    unknown_tokens: int

    @property
    def confidence(self) -> float:
        """The winning class's probability."""
        return self.probabilities[self.label]

    @property
    def oov_rate(self) -> float:
        """Share of the text's words missing from the model's vocabulary (0 for a text without words)."""
        return self.unknown_tokens / self.tokens if self.tokens else 0.0


class Predictor:
    """Predicts with one model version; immutable, so a reload swaps in a whole new Predictor."""

    def __init__(self, stored: StoredModel) -> None:
        self.version = stored.version
        self.metadata: dict[str, Any] = stored.metadata
        self.pipeline = stored.pipeline
        self.classes: list[str] = [str(label) for label in stored.pipeline.classes_]
        self.scorer: CompiledScorer | None
        try:
            self.scorer = CompiledScorer(stored.pipeline)
        except UnsupportedPipelineError as reason:
            logger.warning("model %s: serving through scikit-learn, not compiled: %s", self.version, reason)
            self.scorer = None

    @property
    def engine(self) -> str:
        """`compiled` when the fast exact scorer serves, `pipeline` when scikit-learn does."""
        return "compiled" if self.scorer is not None else "pipeline"

    def _from_weights(self, scorer: CompiledScorer, weighted: TermWeights) -> Prediction:
        return self._result(scorer.probabilities(weighted), weighted.tokens, weighted.unknown_tokens)

    def _result(self, probabilities: Sequence[float], tokens: int, unknown: int) -> Prediction:
        by_class = {label: float(p) for label, p in zip(self.classes, probabilities, strict=True)}
        winner = max(range(len(self.classes)), key=probabilities.__getitem__)
        return Prediction(self.classes[winner], by_class, tokens, unknown)

    def predict(self, text: str) -> Prediction:
        """Classify one text."""
        return self.predict_batch([text])[0]

    def predict_batch(self, texts: Sequence[str]) -> list[Prediction]:
        """Classify many texts, results in the same order."""
        scorer = self.scorer
        if scorer is not None:
            return [self._from_weights(scorer, scorer.weigh(text)) for text in texts]
        probabilities = self.pipeline.predict_proba(list(texts))
        return [
            self._result(row.tolist(), *self._word_counts(text)) for text, row in zip(texts, probabilities, strict=True)
        ]

    def predict_explained(self, text: str, top: int = 10, *, name: str = "") -> tuple[Prediction, Explanation]:
        """Classify one text and give the `top` terms' exact shares of the decision (compiled models only)."""
        scorer = self.scorer
        if scorer is None:
            raise NotExplainableError(name or "?", self.version)
        weighted, explanation = explain(scorer, text, top)
        return self._from_weights(scorer, weighted), explanation

    def _word_counts(self, text: str) -> tuple[int, int]:
        # Only on the fallback path, so building the analyzer per call costs nothing that matters.
        vectorizer = self.pipeline.steps[0][1]
        if not hasattr(vectorizer, "build_analyzer") or not hasattr(vectorizer, "vocabulary_"):
            return 0, 0
        terms = vectorizer.build_analyzer()(text)
        return len(terms), sum(term not in vectorizer.vocabulary_ for term in terms)
